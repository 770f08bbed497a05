// The checks of `ebm eval generation` beyond FID/KID/IS: the likelihood of test images by annealed
// importance sampling of log Z, the energies of training, test and OOD images as histograms, and
// the nearest training images of generated samples (a memorisation check).
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "ebm/build_info.h"
#include "ebm/eval/ais.h"
#include "ebm/experiments/image_eval_internal.h"

namespace ebm::experiments::detail {

namespace {

// Energies of images in batches (no gradients). A conditional model's marginal: -log sum_y
// exp(-E(x, y)).
std::vector<double> energies(ImageEnergyNet& model, const torch::Tensor& x, torch::Device device) {
  auto scores = ebm_scores(model, x, model.options().num_classes(), device);
  for (auto& s : scores) s = -s;
  return scores;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (const double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

// AIS estimate of log Z and the test images' log-likelihood (nats; bits per dimension of the
// 8-bit images: 8 - log p(x) / (D ln 2)).
void likelihood(Context& c, const GenerationChecks& g, ImageEnergyNet& model,
                const std::vector<int64_t>& shape, const torch::Tensor& test) {
  if (g.ais_chains == 0) return;
  if (model.options().num_classes() > 0) {
    c.metrics.set("likelihood",
                  "skipped: AIS of a conditional model's marginal is not implemented");
    return;
  }
  c.log("generation: AIS of log Z (" + std::to_string(g.ais_chains) + " chains, " +
        std::to_string(g.ais_temperatures) + " temperatures)");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(c.seed + 5);
  const auto options = eval::AisOptions()
                           .chains(g.ais_chains)
                           .temperatures(g.ais_temperatures)
                           .step_size(g.ais_step_size)
                           .batch(256);
  const auto r = eval::ais_log_partition(model, shape, {}, options, gen, c.device);
  const auto e_test =
      energies(model, test.narrow(0, 0, std::min(g.images, test.size(0))), c.device);
  int64_t dim = 1;
  for (const int64_t s : shape) dim *= s;
  const double log_p = -mean_of(e_test) - r.log_z;
  const double bits = 8.0 - log_p / (static_cast<double>(dim) * std::log(2.0));
  c.metrics.set("likelihood",
                util::Json::object()
                    .set("log_z", r.log_z)
                    .set("log_z_std_error", r.std_error)
                    .set("effective_chains", r.effective_chains)
                    .set("mala_acceptance", r.acceptance)
                    .set("chains", r.chains)
                    .set("temperatures", g.ais_temperatures)
                    .set("test_images", static_cast<int64_t>(e_test.size()))
                    .set("test_log_likelihood_nats", log_p)
                    .set("test_bits_per_dim", bits)
                    .set("note",
                         "AIS is low on log Z in expectation, so the log-likelihood is "
                         "high in expectation; bits/dim of the 8-bit images from the "
                         "density on [0, 1]^D"));
  c.page->paragraph("Likelihood: AIS from the uniform box (" + std::to_string(r.chains) +
                    " chains, " + std::to_string(g.ais_temperatures) +
                    " temperatures, MALA acceptance " + fmt4(r.acceptance) +
                    ") gives log Z = " + fmt4(r.log_z) + " +- " + fmt4(r.std_error) +
                    " (effective chains " + fmt4(r.effective_chains) +
                    "); mean test log-likelihood " + fmt4(log_p) + " nats = " + fmt4(bits) +
                    " bits/dim. AIS underestimates log Z in expectation: the likelihood is an "
                    "overestimate in expectation.");
}

// Energies of training, test, OOD images and the samples, as histograms.
void energy_histograms(Context& c, const GenerationChecks& g, ImageEnergyNet& model,
                       const std::vector<int64_t>& shape, const torch::Tensor& train,
                       const torch::Tensor& test, const torch::Tensor& samples) {
  const int64_t n = g.images;
  std::vector<std::pair<std::string, torch::Tensor>> sets{
      {"train", train.narrow(0, 0, std::min(n, train.size(0)))},
      {"test", test.narrow(0, 0, std::min(n, test.size(0)))},
      {"samples", samples.narrow(0, 0, std::min(n, samples.size(0)))}};
  OodSet digits;
  digits.name = digits.kind = "sklearn_digits";
  digits.path = std::string(build::kSklearnDataDir) + "/digits.csv.gz";
  sets.emplace_back("sklearn_digits (OOD)", make_ood_set(digits, n, shape, test, c.seed + 7));
  OodSet noise;
  noise.name = noise.kind = "uniform";
  sets.emplace_back("uniform noise (OOD)", make_ood_set(noise, n, shape, test, c.seed + 8));
  std::vector<std::pair<std::string, std::vector<double>>> named;
  util::Json means = util::Json::object();
  for (const auto& [name, x] : sets) {
    named.emplace_back(name, energies(model, x, c.device));
    means.set(name, mean_of(named.back().second));
  }
  c.metrics.set("mean_energy", means);
  double y_max = 0;
  const auto series = score_histograms(named, 40, &y_max);
  c.chart("energies.png", series, 0, y_max * 1.05,
          "Energies (x; a conditional model's marginal) of training, test and OOD images and of "
          "the samples (y: fraction of each set).");
}

// The nearest training images (L2) of the first samples, and the mean nearest distance of samples
// and of test images to the training set (samples much closer than test images: memorised).
void memorisation(Context& c, const GenerationChecks& g, const torch::Tensor& train,
                  const torch::Tensor& test, const torch::Tensor& samples) {
  if (g.nearest_samples == 0) return;
  const auto train_flat = train.flatten(1).to(torch::kFloat32);
  auto nearest = [&](const torch::Tensor& x, int64_t k) {
    std::vector<torch::Tensor> d, i;
    for (int64_t s = 0; s < x.size(0); s += 100) {
      auto dist = torch::cdist(x.narrow(0, s, std::min<int64_t>(100, x.size(0) - s)).flatten(1),
                               train_flat);
      auto [v, idx] = dist.topk(k, 1, /*largest=*/false);
      d.push_back(v);
      i.push_back(idx);
    }
    return std::pair{torch::cat(d), torch::cat(i)};
  };
  const int64_t n = std::min(g.nearest_samples, samples.size(0));
  const auto [d_samples, idx] = nearest(samples.narrow(0, 0, n).to(torch::kFloat32), 4);
  const auto [d_test, unused] = nearest(test.narrow(0, 0, std::min(n, test.size(0))), 1);
  (void)unused;
  const double sample_mean = d_samples.select(1, 0).mean().item<double>();
  const double test_mean = d_test.select(1, 0).mean().item<double>();
  c.metrics.set("memorisation", util::Json::object()
                                    .set("samples", n)
                                    .set("mean_nearest_train_distance_samples", sample_mean)
                                    .set("mean_nearest_train_distance_test", test_mean));
  std::vector<torch::Tensor> rows;
  const int64_t shown = std::min<int64_t>(n, 10);
  for (int64_t s = 0; s < shown; ++s) {
    rows.push_back(samples[s].unsqueeze(0).to(torch::kFloat32));
    rows.push_back(train.index_select(0, idx[s]));
  }
  c.figure(
      "nearest_train.png", torch::cat(rows), 5,
      "Memorisation check: each row is a sample, then its 4 nearest training images (L2). Mean "
      "nearest distance: samples " +
          fmt4(sample_mean) + ", test images " + fmt4(test_mean) +
          " (samples far closer than test images would say the model copies its data).");
}

}  // namespace

GenerationChecks read_generation_checks(const ConfigSection& root) {
  GenerationChecks g;
  auto l = root.section("likelihood");
  g.ais_chains = l.get<int64_t>("chains", 64);
  l.check(g.ais_chains == 0 || (g.ais_chains >= 2 && g.ais_chains <= 100000), "chains",
          "0 (off) or in [2, 100000]");
  g.ais_temperatures = l.get<int64_t>("temperatures", 1000);
  l.check(g.ais_temperatures >= 1 && g.ais_temperatures <= 1000000, "temperatures",
          "in [1, 1000000]");
  g.ais_step_size = l.get<double>("step_size", 1e-4);
  l.check(g.ais_step_size > 0, "step_size", "> 0");
  auto h = root.section("checks");
  g.images = h.get<int64_t>("images", 1000);
  h.check(g.images >= 10, "images", ">= 10");
  g.nearest_samples = h.get<int64_t>("nearest_samples", 100);
  h.check(g.nearest_samples >= 0, "nearest_samples", ">= 0 (0 = off)");
  return g;
}

void run_generation_checks(Context& c, const GenerationChecks& g, LoadedImageEbm& ebm,
                           const torch::Tensor& train, const torch::Tensor& test,
                           const torch::Tensor& samples) {
  ebm.model->eval();
  likelihood(c, g, *ebm.model, ebm.shape, test);
  energy_histograms(c, g, *ebm.model, ebm.shape, train, test, samples);
  memorisation(c, g, train, test, samples);
}

}  // namespace ebm::experiments::detail
