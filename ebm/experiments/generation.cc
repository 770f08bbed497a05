// `ebm eval generation`: FID, KID and Inception Score of persistent-chain samples (the mean energy
// of an ensemble of the newest checkpoints, optionally), beside the reference set's own floor.
// Features come from the published Inception network or from the project's classifier.
#include <torch/torch.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "ebm/core/energy.h"
#include "ebm/eval/features.h"
#include "ebm/eval/image_metrics.h"
#include "ebm/experiments/image_eval_internal.h"
#include "ebm/report/progress.h"

namespace ebm::experiments::detail {

namespace {

// Section `sampling`: the persistent-chain protocol.
struct ChainSpec {
  int64_t samples = 0, chains = 0, rounds = 0, steps = 0;
  double reset = 0;
  std::string init;
};

// Section `features`: the feature extractor and the settings of KID and IS.
struct FeatureSpec {
  std::string kind, inception_path;
  int64_t kid_subsets = 0, kid_size = 0, is_splits = 0;
};

// The scores of the samples against the reference images, and the reference set's own.
struct GenerationScores {
  double fid = 0;
  eval::KernelDistance kid;
  eval::InceptionScore is, is_ref;
  double fid_floor = 0;  // FID between the two halves of the reference set
  Eigen::Index reference_images = 0;
};

// Reads section `sampling`; throws naming the key on a bad value.
ChainSpec read_chain_spec(const ConfigSection& s) {
  ChainSpec r;
  r.samples = s.get<int64_t>("samples", 1000);
  s.check(r.samples >= 20, "samples", ">= 20");
  r.chains = s.get<int64_t>("chains", 500);
  s.check(r.chains >= 1, "chains", ">= 1");
  r.rounds = s.get<int64_t>("rounds", 10);
  s.check(r.rounds >= 1, "rounds", ">= 1");
  r.steps = s.get<int64_t>("steps_per_round", 20);
  s.check(r.steps >= 1, "steps_per_round", ">= 1");
  r.reset = s.get<double>("reset_prob", 0.01);
  s.check(r.reset >= 0 && r.reset <= 1, "reset_prob", "in [0, 1]");
  r.init = s.choice("init", "buffer", {"buffer", "noise"});
  return r;
}

// Reads section `features`; throws naming the key on a bad value.
FeatureSpec read_feature_spec(const ConfigSection& f) {
  FeatureSpec r;
  r.kind = f.choice("kind", "classifier", {"classifier", "inception"});
  r.inception_path = f.get<std::string>("inception_path", "inception-2015-12-05.pt");
  r.kid_subsets = f.get<int64_t>("kid_subsets", 100);
  f.check(r.kid_subsets >= 1, "kid_subsets", ">= 1");
  r.kid_size = f.get<int64_t>("kid_subset_size", 1000);
  f.check(r.kid_size >= 2, "kid_subset_size", ">= 2");
  r.is_splits = f.get<int64_t>("is_splits", 10);
  f.check(r.is_splits >= 1, "is_splits", ">= 1");
  return r;
}

// The feature extractor the config names: the Inception network, or the classifier (trained
// first when its file is missing).
std::unique_ptr<eval::FeatureExtractor> make_features(Context& c, const FeatureSpec& features,
                                                      const ClassifierSpec& cls,
                                                      const DataSpec& data) {
  if (features.kind == "inception")
    return eval::inception_features(features.inception_path, c.device);
  return eval::classifier_features(c.classifier(cls, data));
}

// Persistent chains, as the paper's protocol: a pool of `chains` states run for `rounds` rounds
// of `steps` steps; each round re-initialises a fraction `reset_prob` of them to noise. The pool
// after the last round is one batch of samples; pools repeat until `samples` are collected.
// Returns the samples on the CPU.
torch::Tensor sample_chains(const Context& c, const ChainSpec& spec, LoadedImageEbm& ebm,
                            EnergyModel& energy) {
  const auto& so = ebm.trainer->sampler().options();
  const LangevinSampler sampler(LangevinOptions(so).steps(spec.steps));
  auto& buffer = ebm.trainer->buffer();
  const int64_t classes = ebm.net_options.num_classes();
  torch::manual_seed(c.seed);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(c.seed);
  std::vector<torch::Tensor> collected;
  int64_t have = 0;
  report::Progress progress("sampling", spec.samples, c.quiet ? nullptr : stderr);
  while (have < spec.samples) {
    const int64_t k = std::min(spec.chains, spec.samples - have);
    torch::Tensor pool;
    if (spec.init == "buffer" && buffer.size() > 0) {
      auto states = buffer.states();
      auto idx = torch::randint(states.size(0), {k}, gen, torch::kLong);
      pool = states.index_select(0, idx);
    } else {
      pool = buffer.init_states(k);
    }
    pool = pool.to(c.device);
    auto labels = classes > 0 ? torch::randint(classes, {k}, gen, torch::kLong).to(c.device)
                              : torch::Tensor();
    for (int64_t r = 0; r < spec.rounds; ++r) {
      auto reset_rows = (torch::rand({k}, gen) < spec.reset).nonzero().flatten();
      if (reset_rows.numel() > 0)
        pool.index_copy_(0, reset_rows.to(c.device),
                         buffer.init_states(reset_rows.size(0)).to(c.device));
      pool = sampler.sample(energy, pool, labels, {}, nullptr, gen);
    }
    collected.push_back(pool.cpu());
    have += k;
    progress.update(have, "");
  }
  progress.finish("");
  return torch::cat(collected);
}

// FID, KID and IS of the samples against the reference images, and the reference set's IS and
// half-versus-half FID.
GenerationScores score_samples(eval::FeatureExtractor& fx, const torch::Tensor& samples,
                               const torch::Tensor& reference, const FeatureSpec& features,
                               uint64_t seed) {
  Eigen::MatrixXd fg, pg, fr, pr;
  eval::extract_all(fx, samples, &fg, &pg);
  eval::extract_all(fx, reference, &fr, &pr);
  GenerationScores s;
  s.fid = eval::frechet_distance(eval::gaussian_stats(fg), eval::gaussian_stats(fr));
  s.kid = eval::kernel_distance(fg, fr, features.kid_subsets, features.kid_size, seed);
  s.is = eval::inception_score(pg, std::min<int64_t>(features.is_splits, pg.rows()));
  s.is_ref = eval::inception_score(pr, std::min<int64_t>(features.is_splits, pr.rows()));
  // Floor: the distance between the two halves of the reference set.
  const int64_t half = fr.rows() / 2;
  s.fid_floor = eval::frechet_distance(eval::gaussian_stats(fr.topRows(half)),
                                       eval::gaussian_stats(fr.bottomRows(fr.rows() - half)));
  s.reference_images = fr.rows();
  return s;
}

// Records the scores and the protocol in metrics.json.
void record_generation_metrics(Context& c, const ChainSpec& spec, const eval::FeatureExtractor& fx,
                               size_t members, const torch::Tensor& samples,
                               const GenerationScores& s) {
  util::Json j = util::Json::object();
  j.set("fid", s.fid)
      .set("kid_mean", s.kid.mean)
      .set("kid_std", s.kid.std)
      .set("kid_subsets", s.kid.subsets)
      .set("kid_subset_size", s.kid.subset_size)
      .set("is_mean", s.is.mean)
      .set("is_std", s.is.std)
      .set("is_splits", s.is.splits)
      .set("samples", samples.size(0));
  util::Json r = util::Json::object();
  r.set("is_mean", s.is_ref.mean)
      .set("is_std", s.is_ref.std)
      .set("fid_half_vs_half", s.fid_floor)
      .set("images", static_cast<int64_t>(s.reference_images));
  c.metrics.set("features", fx.name())
      .set("comparable_with_published", fx.comparable_with_published())
      .set("samples", samples.size(0))
      .set("protocol", "persistent chains: " + std::to_string(spec.chains) + " per pool, " +
                           std::to_string(spec.rounds) + " rounds x " + std::to_string(spec.steps) +
                           " steps, reset " + fmt4(spec.reset) + ", init " + spec.init +
                           ", ensemble of " + std::to_string(members) + " checkpoint(s)")
      .set("ebm", j)
      .set("reference_data", r);
}

// Writes the report's table and figure of the samples, and the summary's headline numbers.
void write_generation_report(Context& c, const DataSpec& data, const eval::FeatureExtractor& fx,
                             const torch::Tensor& samples, const GenerationScores& s) {
  const std::string note =
      fx.comparable_with_published()
          ? "Features: Inception-v3 (inception-2015-12-05), comparable with published numbers."
          : "Features: the project's own classifier. NOT comparable with published FID/IS.";
  c.page->paragraph(note + " " + std::to_string(samples.size(0)) + " samples against " +
                    std::to_string(s.reference_images) + " reference images (" + data.format + " " +
                    data.split + ").");
  c.page->table({"set", "FID", "KID", "IS"},
                {{"EBM samples", fmt4(s.fid), fmt4(s.kid.mean) + " +- " + fmt4(s.kid.std),
                  fmt4(s.is.mean) + " +- " + fmt4(s.is.std)},
                 {"reference (half vs half)", fmt4(s.fid_floor), "-",
                  fmt4(s.is_ref.mean) + " +- " + fmt4(s.is_ref.std)}});
  c.figure("samples.png", samples.narrow(0, 0, std::min<int64_t>(100, samples.size(0))), 10,
           "The first 100 samples.");
  char line[320];
  std::snprintf(line, sizeof(line),
                "%s\nsamples %ld: FID %.4f  KID %.5f +- %.5f  IS %.4f +- %.4f\nreference: FID "
                "half/half %.4f  IS %.4f\n",
                note.c_str(), static_cast<long>(samples.size(0)), s.fid, s.kid.mean, s.kid.std,
                s.is.mean, s.is.std, s.fid_floor, s.is_ref.mean);
  c.summary.table = line;
}

// Section `test_time`: FID/KID/IS of fresh chains from noise against the number of Langevin steps
// at sampling time (the blog's "longer sampling, sharper samples"); empty steps: off.
struct TestTimeSpec {
  std::vector<int64_t> steps;
  int64_t samples = 500;
};

TestTimeSpec read_test_time_spec(const ConfigSection& s) {
  TestTimeSpec t;
  t.steps = s.get<std::vector<int64_t>>("steps", {10, 20, 40, 80});
  for (const int64_t k : t.steps) s.check(k >= 1 && k <= 100000, "steps", "values in [1, 100000]");
  t.samples = s.get<int64_t>("samples", 500);
  s.check(t.samples >= 20, "samples", ">= 20");
  return t;
}

// One chain per sample from the buffer's init distribution (noise), run for each step count.
void test_time_compute(Context& c, const TestTimeSpec& t, const FeatureSpec& features,
                       LoadedImageEbm& ebm, EnergyModel& energy, eval::FeatureExtractor& fx,
                       const torch::Tensor& reference) {
  if (t.steps.empty()) return;
  ChainSpec spec;
  spec.samples = spec.chains = t.samples;
  spec.rounds = 1;
  spec.init = "noise";
  util::Json rows = util::Json::array();
  std::vector<report::Series> fid{{"FID", {}, {}}}, is{{"IS", {}, {}}}, kid{{"KID x 100", {}, {}}};
  std::vector<std::vector<std::string>> table;
  double fid_max = 0, is_max = 0;
  for (const int64_t k : t.steps) {
    c.log("generation: " + std::to_string(t.samples) + " chains of " + std::to_string(k) +
          " steps from noise");
    spec.steps = k;
    const auto samples = sample_chains(c, spec, ebm, energy);
    const auto s = score_samples(fx, samples, reference, features, c.seed);
    rows.push(util::Json::object()
                  .set("steps", k)
                  .set("fid", s.fid)
                  .set("kid_mean", s.kid.mean)
                  .set("kid_std", s.kid.std)
                  .set("is_mean", s.is.mean)
                  .set("is_std", s.is.std));
    for (auto* series : {&fid, &is, &kid}) (*series)[0].x.push_back(static_cast<double>(k));
    fid[0].y.push_back(s.fid);
    is[0].y.push_back(s.is.mean);
    kid[0].y.push_back(100 * s.kid.mean);
    fid_max = std::max({fid_max, s.fid, 100 * s.kid.mean});
    is_max = std::max(is_max, s.is.mean);
    table.push_back({std::to_string(k), fmt4(s.fid), fmt4(s.kid.mean), fmt4(s.is.mean)});
  }
  c.metrics.set(
      "test_time",
      util::Json::object().set("samples", t.samples).set("init", "noise").set("by_steps", rows));
  c.page->paragraph("Test-time compute: " + std::to_string(t.samples) +
                    " fresh chains from noise, scored after each number of Langevin steps.");
  c.page->table({"Langevin steps", "FID", "KID", "IS"}, table);
  fid.push_back(kid[0]);
  c.chart("test_time_fid.png", fid, 0, fid_max * 1.05,
          "FID and 100 x KID (y, lower is better) against Langevin steps at sampling time (x).");
  c.chart("test_time_is.png", is, 0, is_max * 1.05,
          "Inception Score (y, higher is better) against Langevin steps at sampling time (x).");
}

}  // namespace

void run_generation(Context& c) {
  auto root = c.config->root();
  const auto [src, data, cls] = read_common(root);
  const ChainSpec sampling = read_chain_spec(root.section("sampling"));
  const FeatureSpec features = read_feature_spec(root.section("features"));
  const TestTimeSpec test_time = read_test_time_spec(root.section("test_time"));
  const GenerationChecks checks = read_generation_checks(root);
  if (c.checked_only()) return;

  std::vector<std::shared_ptr<ImageEnergyNet>> members;
  auto ebm = c.load_ebm(src, &members);
  WeightedSumEnergy ensemble;
  for (auto& m : members) ensemble.add(m, 1.0 / static_cast<double>(members.size()));
  const auto fx = make_features(c, features, cls, data);
  const auto ds = load_data(data, c.seed);
  const auto gen_images = sample_chains(c, sampling, ebm, ensemble);
  const auto ref = conform(ds.images, ebm.shape);
  const auto scores = score_samples(*fx, gen_images, ref, features, c.seed);
  record_generation_metrics(c, sampling, *fx, members.size(), gen_images, scores);
  write_generation_report(c, data, *fx, gen_images, scores);
  test_time_compute(c, test_time, features, ebm, ensemble, *fx, ref);
  DataSpec train_spec{ebm.data_format, ebm.data_path, "train", 0};
  const auto train = conform(load_data(train_spec, c.seed).images, ebm.shape);
  DataSpec test_spec = data;
  test_spec.split = "test";
  const auto test =
      test_spec.split == data.split ? ref : conform(load_data(test_spec, c.seed).images, ebm.shape);
  run_generation_checks(c, checks, ebm, train, test, gen_images);
}

}  // namespace ebm::experiments::detail
