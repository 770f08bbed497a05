// The image experiments of the paper, one command each: `ebm eval <experiment> --config F`.
//   generation  FID / KID / Inception Score of persistent-chain samples (optional checkpoint
//               ensemble)
//   completion  masked images completed by the masked sampler, several completions per input
//   crossclass  chains started from an image of one class under the conditional energy of another
//   ood         AUROC of the energy score against several out-of-distribution sets, beside a
//               classifier's maximum-softmax score
//   robustness  the conditional EBM as a classifier under PGD (L-inf, L2), against a plain CNN
//   compose     dSprites factor models combined by summing energies, plus the 2-D demonstration
//   continual   class-incremental learning on split data: the conditional EBM against fine-tuning
//               and EWC on the same net
//   hybrid      conditional EBMs (hybrid CD + cross-entropy, CD only) and a CNN as classifiers:
//               accuracy, calibration, OOD with p(x) and max p(y | x), PGD
// Each writes into its run directory: config.yaml, metrics.json, PNG figures and report.html.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "ebm/core/energy.h"
#include "ebm/core/langevin.h"

namespace ebm::experiments {

const std::vector<std::string>& image_experiments();

struct EvalRunOptions {
  std::string experiment;  // one of image_experiments()
  std::string config_path;
  std::vector<std::string> overrides;  // --set key=value
  std::string out_dir;                 // empty: runs/<name>
  bool quiet = false;                  // no progress display
  bool check_only = false;             // validate the config (every key) and stop
};

struct EvalRunSummary {
  std::string run_dir, metrics_json, report_html;
  std::string table;  // the headline numbers as text (printed by the CLI)
  std::vector<std::string> figures;
};

EvalRunSummary run_image_eval(const EvalRunOptions& options);

// ---- pieces of the experiments, exposed for tests ----

// Completion masks: true = pixel to complete. kind "box" (a centred square of side
// box_fraction * H), "half" (the bottom half), "salt_pepper" (each pixel with probability
// `fraction`, same pattern across channels). Shape [N, 1, H, W] bool (broadcasts over channels).
torch::Tensor completion_mask(const std::string& kind, int64_t n, int64_t height, int64_t width,
                              double fraction, at::Generator& generator);

// `completions` completions of each image in `images` [N, C, H, W]: the masked pixels start from
// uniform noise and move under the sampler; the others keep their values bit for bit. Returns
// [N, completions, C, H, W].
torch::Tensor complete_images(EnergyModel& model, const LangevinSampler& sampler,
                              const torch::Tensor& images, const torch::Tensor& mask,
                              int64_t completions, const torch::Tensor& condition,
                              at::Generator& generator);

}  // namespace ebm::experiments
