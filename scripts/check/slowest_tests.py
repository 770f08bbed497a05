#!/usr/bin/env python3
"""Prints the slowest tests of a CTest run from its JUnit report, and the run's total.

    scripts/check/slowest_tests.py JUNIT_XML [N]

scripts/test.sh runs it after CTest (N = 10): speed belongs to bench/, but a test that grows slow
should be seen before it pushes CI past its limit.
"""
import sys
import xml.etree.ElementTree as ET


def main():
    path = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"slowest tests: no CTest report ({e})")
        return 0
    cases = [(float(c.get("time", 0)), c.get("name", "?"), c.find("failure") is not None)
             for c in root.iter("testcase")]
    cases.sort(reverse=True)
    total = sum(t for t, _, _ in cases)
    print(f"\nThe {min(n, len(cases))} slowest of {len(cases)} tests "
          f"(test time summed over tests: {total:.0f} s):")
    for t, name, failed in cases[:n]:
        print(f"  {t:8.1f} s  {name}{'  (failed)' if failed else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
