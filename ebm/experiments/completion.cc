// `ebm eval completion`: masked images (a centred box, the bottom half, salt-and-pepper pixels)
// completed by the masked sampler, several completions per input, scored against the originals.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "ebm/experiments/image_eval.h"
#include "ebm/experiments/image_eval_internal.h"

namespace ebm::experiments {

torch::Tensor completion_mask(const std::string& kind, int64_t n, int64_t height, int64_t width,
                              double fraction, at::Generator& generator) {
  auto mask = torch::zeros({n, 1, height, width}, torch::kBool);
  if (kind == "box") {
    const auto side = std::max<int64_t>(1, static_cast<int64_t>(std::lround(fraction * height)));
    const int64_t y0 = (height - side) / 2, x0 = (width - std::min(side, width)) / 2;
    mask.narrow(2, y0, side).narrow(3, x0, std::min(side, width)).fill_(true);
  } else if (kind == "half") {
    mask.narrow(2, height / 2, height - height / 2).fill_(true);
  } else if (kind == "salt_pepper") {
    mask = torch::rand({n, 1, height, width}, generator) < fraction;
  } else {
    throw std::invalid_argument("mask '" + kind + "': expected box, half or salt_pepper");
  }
  return mask;
}

torch::Tensor complete_images(EnergyModel& model, const LangevinSampler& sampler,
                              const torch::Tensor& images, const torch::Tensor& mask,
                              int64_t completions, const torch::Tensor& condition,
                              at::Generator& generator) {
  const int64_t n = images.size(0);
  auto x0 = images.repeat_interleave(completions, 0);
  auto m = mask.to(images.device()).repeat_interleave(completions, 0).expand_as(x0);
  auto noise = torch::rand(x0.sizes(), generator).to(x0.device(), x0.scalar_type());
  auto start = torch::where(m, noise, x0);
  auto cond = condition.defined() ? condition.repeat_interleave(completions, 0) : torch::Tensor();
  auto out = sampler.sample(model, start, cond, m, nullptr, generator);
  std::vector<int64_t> shape{n, completions};
  for (int64_t d = 1; d < images.dim(); ++d) shape.push_back(images.size(d));
  return out.reshape(shape);
}

namespace detail {

void run_completion(Context& c) {
  auto root = c.config->root();
  const auto src = read_ebm_source(root.section("ebm"));
  const auto data = read_data_spec(root.section("data"), "test");
  auto s = root.section("completion");
  const auto masks = s.get<std::vector<std::string>>("masks", {"box", "half", "salt_pepper"});
  for (const auto& m : masks)
    if (m != "box" && m != "half" && m != "salt_pepper")
      throw ConfigError(s.where("masks") + ": " + s.path("masks") + ": '" + m +
                        "' is not box, half or salt_pepper");
  const auto inputs = s.get<int64_t>("inputs", 8);
  s.check(inputs >= 1, "inputs", ">= 1");
  const auto completions = s.get<int64_t>("completions", 4);
  s.check(completions >= 2, "completions", ">= 2 (diversity needs two)");
  const auto steps = s.get<int64_t>("steps", 100);
  s.check(steps >= 1, "steps", ">= 1");
  const auto box_fraction = s.get<double>("box_fraction", 0.5);
  s.check(box_fraction > 0 && box_fraction <= 1, "box_fraction", "in (0, 1]");
  const auto sp_fraction = s.get<double>("salt_pepper_fraction", 0.5);
  s.check(sp_fraction > 0 && sp_fraction < 1, "salt_pepper_fraction", "in (0, 1)");
  if (c.checked_only()) return;

  auto ebm = c.load_ebm(src);
  auto ds = load_data(data, c.seed);
  auto x = conform(ds.images.narrow(0, 0, std::min(inputs, ds.size())), ebm.shape).to(c.device);
  torch::Tensor cond;
  if (ebm.net_options.num_classes() > 0) cond = ds.labels.narrow(0, 0, x.size(0)).to(c.device);
  const LangevinSampler sampler(LangevinOptions(ebm.trainer->sampler().options()).steps(steps));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(c.seed);
  torch::manual_seed(c.seed);
  auto mean_image = conform(ds.images, ebm.shape).mean(0, true).to(c.device);
  c.page->paragraph(
      std::to_string(x.size(0)) + " test images, " + std::to_string(completions) +
      " completions each, " + std::to_string(steps) +
      " Langevin steps from uniform noise "
      "in the masked pixels (the unmasked ones are held fixed by the sampler's mask). "
      "mse: mean squared error over masked pixels against the original; best_mse: the best "
      "completion per input; diversity: RMS difference between two completions of the same "
      "input over masked pixels; mean_fill_mse: the masked pixels filled with the data mean.");
  std::vector<std::vector<std::string>> rows;
  std::string table =
      "mask          mse     best_mse  diversity  mean_fill_mse  unmasked_max_change\n";
  for (const auto& kind : masks) {
    c.log("completion: " + kind);
    auto mask = completion_mask(kind, x.size(0), ebm.shape[1], ebm.shape[2],
                                kind == "box" ? box_fraction : sp_fraction, gen)
                    .to(c.device);
    auto out =
        complete_images(*ebm.model, sampler, x, mask, completions, cond, gen);  // [N,K,C,H,W]
    auto mf = mask.unsqueeze(1).expand_as(out).to(torch::kFloat32);
    auto orig = x.unsqueeze(1).expand_as(out);
    const double masked_count = mf.sum().item<double>();
    const double mse = ((out - orig).pow(2) * mf).sum().item<double>() / masked_count;
    auto per =
        ((out - orig).pow(2) * mf).flatten(2).sum(2) / mf.flatten(2).sum(2).clamp_min(1);  // [N,K]
    const double best = std::get<0>(per.min(1)).mean().item<double>();
    auto d01 = ((out.select(1, 0) - out.select(1, 1)).pow(2) * mf.select(1, 0)).flatten(1).sum(1) /
               mf.select(1, 0).flatten(1).sum(1).clamp_min(1);
    const double diversity = d01.sqrt().mean().item<double>();
    auto mask_f = mask.expand_as(x).to(torch::kFloat32);
    const double fill = ((mean_image.expand_as(x) - x).pow(2) * mask_f).sum().item<double>() /
                        mask_f.sum().item<double>();
    const double unmasked_change = ((out - orig).abs() * (1 - mf)).max().item<double>();
    util::Json j = util::Json::object();
    j.set("mse", mse)
        .set("best_mse", best)
        .set("diversity", diversity)
        .set("mean_fill_mse", fill)
        .set("unmasked_max_change", unmasked_change)
        .set("masked_fraction", mask_f.mean().item<double>());
    c.metrics.set(kind, j);
    rows.push_back(
        {kind, fmt4(mse), fmt4(best), fmt4(diversity), fmt4(fill), fmt4(unmasked_change)});
    char line[160];
    std::snprintf(line, sizeof(line), "%-12s %8.4f %10.4f %10.4f %14.4f %20.4g\n", kind.c_str(),
                  mse, best, diversity, fill, unmasked_change);
    table += line;
    // Rows: original, masked input (grey where masked), completions.
    auto shown = torch::where(mask.expand_as(x), torch::full_like(x, 0.5), x);
    std::vector<torch::Tensor> grid{x, shown};
    for (int64_t k = 0; k < completions; ++k) grid.push_back(out.select(1, k));
    c.page->heading("Mask: " + kind, 3);
    c.figure("completion_" + kind + ".png", torch::cat(grid), x.size(0),
             "Rows: originals, masked inputs (grey = masked), then " + std::to_string(completions) +
                 " completions.");
  }
  c.page->table({"mask", "mse", "best_mse", "diversity", "mean_fill_mse", "unmasked_max_change"},
                rows);
  c.metrics.set("inputs", x.size(0)).set("completions", completions).set("steps", steps);
  c.summary.table = table;
}

}  // namespace detail

}  // namespace ebm::experiments
