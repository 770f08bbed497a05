#include <fmt/core.h>
#include <mujoco/mujoco.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ebm/build_info.h"
#include "ebm/experiments/trajectory_internal.h"
#include "ebm/report/html.h"
#include "ebm/report/plot.h"
#include "ebm/report/png.h"
#include "ebm/util/files.h"
#include "ebm/util/json.h"

namespace ebm::experiments::traj {
namespace fs = std::filesystem;

void write_paths_png(const std::string& path,
                     const std::vector<std::pair<std::string, torch::Tensor>>& sets) {
  double lo_x = 1e300, lo_y = 1e300, hi_x = -1e300, hi_y = -1e300;
  for (const auto& [name, s] : sets) {
    lo_x = std::min(lo_x, s.select(-1, 0).min().item<double>());
    hi_x = std::max(hi_x, s.select(-1, 0).max().item<double>());
    lo_y = std::min(lo_y, s.select(-1, 1).min().item<double>());
    hi_y = std::max(hi_y, s.select(-1, 1).max().item<double>());
  }
  const int64_t size = 256;
  const double span = std::max({hi_x - lo_x, hi_y - lo_y, 1e-6}) * 1.1;
  const double cx = 0.5 * (lo_x + hi_x) - span / 2, cy = 0.5 * (lo_y + hi_y) - span / 2;
  const double scale = (size - 1) / span;
  std::vector<torch::Tensor> panels;
  for (const auto& [name, s] : sets) {  // s: [K, T, P, 3]
    auto img = torch::ones({3, size, size});
    for (int64_t k = 0; k < s.size(0); ++k) {
      for (int64_t pt = 0; pt < s.size(2); ++pt) {
        auto xy = s[k].select(1, pt).narrow(1, 0, 2).to(torch::kFloat64).clone();
        xy.select(1, 0).sub_(cx).mul_(scale);
        xy.select(1, 1).sub_(cy).mul_(scale);
        report::draw_polyline(img, xy, report::palette(k));
      }
    }
    panels.push_back(img);
  }
  report::write_png_grid(path, torch::stack(panels), static_cast<int64_t>(panels.size()));
}

namespace {

// The render script's input: camera, column titles and rows of qpos frames.
// [{"name": ..., "qpos": [[...], ...]}, ...] of named qpos sequences.
util::Json named_frames(const std::vector<std::pair<std::string, torch::Tensor>>& rows) {
  auto row_list = util::Json::array();
  for (const auto& [name, frames] : rows) {
    auto qpos = util::Json::array();
    const auto q = frames.to(torch::kFloat64).contiguous();
    for (int64_t t = 0; t < q.size(0); ++t) {
      qpos.push(std::vector<double>(q[t].data_ptr<double>(), q[t].data_ptr<double>() + q.size(1)));
    }
    row_list.push(util::Json::object().set("name", name).set("qpos", std::move(qpos)).compact());
  }
  return row_list;
}

util::Json frames_request(const TrajConfig& c, const RenderRequest& r, double frame_dt) {
  const auto at = r.lookat.to(torch::kFloat64).contiguous();
  auto request =
      util::Json::object()
          .set("lookat", std::vector<double>(at.data_ptr<double>(), at.data_ptr<double>() + 3))
          .set("distance", r.distance)
          .set("azimuth", c.camera_azimuth)
          .set("elevation", c.camera_elevation)
          .set("columns", r.columns)
          .set("rows", named_frames(r.rows));
  if (!r.animation.empty()) {
    // One GIF frame per recorded frame, shown as long as it lasts in the simulation.
    request.set("animation", named_frames(r.animation)).set("frame_ms", 1000.0 * frame_dt);
  }
  return request.compact();
}

// Methods in table order: the truth, the EBM (and its composition with the experts), the
// baselines.
std::vector<std::string> method_order(const MethodMetrics& metrics) {
  std::vector<std::string> out;
  for (const char* m : {"ground_truth", "ebm", "ebm_experts", "mdn", "fc"}) {
    if (metrics.count(m)) out.push_back(m);
  }
  return out;
}

eval::BootstrapOptions bootstrap_options(const TrajConfig& c) {
  eval::BootstrapOptions o;
  o.resamples = c.bootstrap_resamples;
  o.seed = c.seed;
  return o;
}

// The EBM as the main job samples it: composed with its experts when configured.
std::string reference_method(const MethodMetrics& metrics) {
  return metrics.count("ebm_experts") ? "ebm_experts" : "ebm";
}

Summary state_summary(const EvalResult& r, const TrajConfig& c) {
  return summarize(r.per_state, reference_method(r.metrics), {"mdn", "fc"}, bootstrap_options(c));
}

Summary goal_summary(const EvalResult& r, const TrajConfig& c) {
  return summarize(r.goals, "ebm_goal", {"mdn_best_of_n", "fc", "ebm_experts"},
                   bootstrap_options(c));
}

util::Json means_json(const std::map<std::string, eval::Interval>& metrics) {
  auto m = util::Json::object().compact();
  for (const auto& [k, i] : metrics) m.set(k, i.mean);
  return m;
}

// An HTML table of paired differences and the sentences that read them.
void comparison_html(report::HtmlPage& page, const Summary& s) {
  for (const auto& cmp : s.comparisons) {
    page.heading(cmp.method + " - " + cmp.baseline +
                 " (paired over units; negative: " + cmp.method + " lower)");
    std::vector<std::vector<std::string>> rows;
    for (const auto& [k, d] : cmp.differences)
      rows.push_back({k, eval::format_interval(d, 4),
                      d.below(0)   ? cmp.method
                      : d.above(0) ? cmp.baseline
                                   : "not resolved"});
    page.table({"metric", "difference [95% interval]", "lower"}, rows);
  }
  std::string list;
  for (const auto& cmp : s.comparisons) {
    for (const auto& v : cmp.verdicts) list += "<li>" + report::html_escape(v) + "</li>\n";
  }
  page.raw("<ul>\n" + list + "</ul>\n");
}

}  // namespace

bool render_frames(const TrajConfig& c, Physics& p, const std::string& dir,
                   const RenderRequest& request) {
  fs::create_directories(dir);
  mj_saveModel(p.model.get(), (dir + "/model.mjb").c_str(), nullptr, 0);
  if (!fs::exists(dir + "/model.mjb")) {
    fmt::print(stderr, "warning: cannot save {}/model.mjb; no rendered frames\n", dir);
    return false;
  }
  util::write_file_atomic(dir + "/frames.json",
                          frames_request(c, request, p.frame_dt).dump() + "\n");
  std::string cmd = "'" + std::string(build::kPython) + "' '" + build::kSourceDir +
                    "/scripts/render_frames.py' '" + dir + "' '" + request.png + "'";
  if (!request.animation.empty()) cmd += " --gif '" + request.gif + "'";
  cmd += " > /dev/null";
  if (std::system(cmd.c_str()) != 0) {
    fmt::print(stderr,
               "warning: rendering frames failed (MuJoCo's Python renderer with OSMesa; "
               "see the message above); the report has no rendered frames\n");
    return false;
  }
  return true;
}

std::string metrics_table(const MethodMetrics& metrics) {
  const std::vector<std::string> methods = method_order(metrics);
  std::string out = fmt::format("{:<28}", "metric");
  for (const auto& m : methods) out += fmt::format("{:>14}", m);
  out += "\n";
  for (const auto& [k, v] : metrics.at("ebm")) {
    out += fmt::format("{:<28}", k);
    for (const auto& m : methods) {
      auto it = metrics.at(m).find(k);
      out += it == metrics.at(m).end() ? fmt::format("{:>14}", "-")
                                       : fmt::format("{:>14.4f}", it->second);
    }
    out += "\n";
  }
  return out;
}

std::string metrics_json(const EvalResult& r, const TrajConfig& c) {
  auto methods = util::Json::object();
  for (const auto& [method, metrics] : r.metrics) {
    auto m = util::Json::object().compact();
    for (const auto& [k, v] : metrics) m.set(k, v);
    methods.set(method, std::move(m));
  }
  auto doc = util::Json::object()
                 .set("states", r.states)
                 .set("samples", c.samples)
                 .set("horizon", c.horizon)
                 .set("units", "metres (tracked sites)")
                 .set("interval", "95% percentile bootstrap over held-out states")
                 .set("methods", std::move(methods));
  auto summary = summary_json(state_summary(r, c));
  doc.set("intervals", summary.at("intervals"))
      .set("paired_differences", summary.at("paired_differences"))
      .set("verdicts", summary.at("verdicts"));
  if (c.long_horizon > 0) {
    auto curves = util::Json::object();
    for (const auto& [method, metrics] : r.curves.sum) {
      auto one = util::Json::object();
      for (const auto& [k, v] : metrics) one.set(k, util::Json(r.curves.mean(method, k)).compact());
      curves.set(method, std::move(one));
    }
    doc.set("long_horizon", util::Json::object()
                                .set("frames", c.long_horizon)
                                .set("samples", c.long_samples)
                                .set("curves", std::move(curves)));
  }
  if (!r.goals.empty()) {
    const auto s = goal_summary(r, c);
    auto goal_methods = util::Json::object();
    for (const auto& [m, metrics] : s.intervals) goal_methods.set(m, means_json(metrics));
    auto g = summary_json(s);
    doc.set(
        "goals",
        util::Json::object()
            .set("goals", static_cast<int64_t>(r.goals.at("ebm_goal").at("goal_distance").size()))
            .set("site", c.goal_site)
            .set("horizon", c.goal_horizon)
            .set("weight", c.goal_weight)
            .set("mdn_samples", c.goal_mdn_samples)
            .set("methods", std::move(goal_methods))
            .set("intervals", g.at("intervals"))
            .set("paired_differences", g.at("paired_differences"))
            .set("verdicts", g.at("verdicts")));
  }
  return doc.dump() + "\n";
}

namespace {

// The pictures of the first held-out state (long-horizon charts have their own section): paths,
// rendered frames, the animation.
void first_state_pictures_html(report::HtmlPage& page, const EvalResult& r) {
  page.heading("Top-down paths of the tracked sites from the first held-out state");
  page.paragraph(
      "Panels, left to right: true branches, FC prediction, EBM samples (composed with the "
      "experts when their weights are > 0), MDN samples (one colour per trajectory).");
  for (const auto& p : r.pictures) {
    const std::string name = fs::path(p).filename().string();
    if (name.rfind("long_", 0) == 0) continue;  // in the long-horizon section
    if (name == "frames.png") {
      page.heading("Rendered frames");
      page.paragraph(
          "Rows: the recorded continuation, the FC prediction, two EBM samples (composed with "
          "the experts when their weights are > 0); columns: frames after the history.");
    }
    if (name == "futures.gif") {
      page.heading("The futures in motion");
      page.paragraph(
          "Left to right: the recorded continuation, an EBM sample, the FC prediction, from the "
          "last history frame on at the recording's frame rate (futures.gif).");
    }
    page.image(name, 1040);
  }
}

}  // namespace

std::string report_html(const EvalResult& r, const TrajConfig& c, const std::string& table) {
  report::HtmlPage page(c.name);
  page.heading(c.name + ": futures from one state", 1);
  std::string sites;
  for (const auto& site : c.sites) sites += (sites.empty() ? "" : ", ") + report::html_escape(site);
  page.raw(fmt::format(
      "<p>Scene <b>{}</b>; {} held-out start states, K = {} samples per method, horizon {} frames "
      "({} physics steps); distances in metres between tracked sites ({}). "
      "<code>ground_truth</code> are the recorded branches from the same state; <code>fc</code> "
      "is the feedforward MSE baseline (one prediction), <code>mdn</code> a mixture density "
      "network, <code>ebm</code> the energy model sampled with Langevin dynamics, "
      "<code>ebm_experts</code> (when model.limit_weight or model.kinematic_weight &gt; 0) the "
      "same chains under the product of the energy model and the hand-written experts (joint "
      "limits, position-velocity consistency).</p>\n",
      report::html_escape(c.record.scene.name), r.states, c.samples, c.horizon,
      c.horizon * c.record.decimation, sites));
  const Summary summary = state_summary(r, c);
  const std::vector<std::string> methods = method_order(r.metrics);
  std::vector<std::string> header = {"metric"};
  header.insert(header.end(), methods.begin(), methods.end());
  std::vector<std::vector<std::string>> rows;
  for (const auto& [k, v] : r.metrics.at("ebm")) {
    rows.push_back({k});
    for (const auto& m : methods) {
      const auto& per_method = summary.intervals.at(m);
      auto it = per_method.find(k);
      rows.back().push_back(it == per_method.end() ? "-" : eval::format_interval(it->second, 4));
    }
  }
  page.paragraph("Means over held-out states with 95% bootstrap intervals (" +
                 std::to_string(c.bootstrap_resamples) + " resamples of the states).");
  page.table(header, rows);
  page.heading("Which method wins on what");
  comparison_html(page, summary);
  if (c.long_horizon > 0) {
    page.heading(fmt::format("Long horizons: {} frames", c.long_horizon));
    std::string lines;
    int colour = 0;
    for (const auto& [m, unused] : r.curves.sum) {
      lines += (colour ? ", " : "") + m + " (palette colour " + std::to_string(colour) + ")";
      ++colour;
    }
    page.paragraph(fmt::format(
        "{} futures per method and state (FC: one), chained windows; per frame, the mean over "
        "states and futures. A future counts as diverged from its first non-finite value or "
        "joint beyond its range by more than the range's width; later frames are left out of "
        "the other curves. The nearest-branch distance runs as far as the branches were "
        "recorded. Lines: {}.",
        c.long_samples, lines));
    const auto labels = long_horizon_metrics();
    for (const auto& p : r.pictures) {
      const std::string name = fs::path(p).filename().string();
      for (const auto& [metric, label] : labels) {
        if (name != "long_" + metric + ".png") continue;
        page.paragraph(metric + ": " + label + ", against the frame (1.." +
                       std::to_string(c.long_horizon) + ")");
        page.image(name, 480);
      }
    }
  }
  if (!r.goals.empty()) {
    const Summary g = goal_summary(r, c);
    page.heading("Goal-directed futures");
    page.paragraph(fmt::format(
        "{} goals, one per held-out state: where a true branch takes site {} at frame {}. "
        "ebm_goal: the EBM with its experts and the goal energy (weight {}); ebm_experts: the "
        "same chains without it; mdn_best_of_n: the MDN's best of {} samples by goal distance; "
        "fc: the FC prediction; start: the site's distance at the start. Distances in metres.",
        r.goals.at("ebm_goal").at("goal_distance").size(), report::html_escape(c.goal_site),
        c.goal_horizon, c.goal_weight, c.goal_mdn_samples));
    std::vector<std::vector<std::string>> goal_rows;
    for (const auto& [m, metrics] : g.intervals) {
      for (const auto& [k, i] : metrics) goal_rows.push_back({m, k, eval::format_interval(i, 4)});
    }
    page.table({"method", "metric", "mean [95% interval]"}, goal_rows);
    comparison_html(page, g);
  }
  first_state_pictures_html(page, r);
  page.raw("<pre>" + report::html_escape(table) + "</pre>\n");
  return page.str();
}

}  // namespace ebm::experiments::traj
