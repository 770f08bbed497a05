"""Installs the `ebm` package into a Python environment without pip's build machinery (no
network, no setuptools' wheel command): the package files into site-packages and a dist-info
folder, so `pip show ebm` and `pip uninstall ebm` work.

usage: python install.py [--site-packages DIR]       (default: this interpreter's purelib)
"""
import argparse
import base64
import hashlib
import os
import shutil
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))
NAME, VERSION = "ebm", "0.1.0"


def record_line(root, rel):
    with open(os.path.join(root, rel), "rb") as f:
        data = f.read()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{rel},sha256={digest},{len(data)}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--site-packages", default=sysconfig.get_paths()["purelib"])
    site = ap.parse_args().site_packages
    target = os.path.join(site, NAME)
    info = os.path.join(site, f"{NAME}-{VERSION}.dist-info")
    for old in (target, info):
        shutil.rmtree(old, ignore_errors=True)
    shutil.copytree(os.path.join(HERE, NAME), target,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    os.makedirs(info)
    files = {
        "METADATA": f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n"
                    "Summary: Python access to the ebm toolkit\nRequires-Dist: numpy\n",
        "INSTALLER": "ebm-bootstrap\n",
        "top_level.txt": f"{NAME}\n",
    }
    for name, text in files.items():
        with open(os.path.join(info, name), "w") as f:
            f.write(text)
    rels = [os.path.relpath(os.path.join(d, n), site) for d, _, names in os.walk(target)
            for n in names] + [os.path.join(os.path.basename(info), n) for n in files]
    with open(os.path.join(info, "RECORD"), "w") as f:
        for rel in sorted(rels):
            f.write(record_line(site, rel) + "\n")
        f.write(os.path.join(os.path.basename(info), "RECORD") + ",,\n")
    print(target)


if __name__ == "__main__":
    main()
