#include "ebm/nets/trajectory_nets.h"

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace ebm {

namespace {

torch::nn::Sequential mlp(int64_t in, int64_t width, int64_t layers) {
  torch::nn::Sequential s;
  int64_t d = in;
  for (int64_t i = 0; i < layers; ++i) {
    s->push_back(torch::nn::Linear(d, width));
    s->push_back(torch::nn::SiLU());
    d = width;
  }
  return s;
}

void check_windows(const TrajectoryNetOptions& o, const torch::Tensor& history,
                   const torch::Tensor* future, const char* who) {
  const int64_t lf = o.latent_frames();
  if (!history.defined() || history.dim() != 3 || history.size(1) != o.history() ||
      history.size(2) != o.dim()) {
    throw std::invalid_argument(std::string(who) + ": history must be [B, " +
                                std::to_string(o.history()) + ", " + std::to_string(o.dim()) +
                                "], got " +
                                (history.defined() ? c10::str(history.sizes()) : "none"));
  }
  if (future && (future->dim() != 3 || future->size(1) != lf || future->size(2) != o.dim())) {
    throw std::invalid_argument(std::string(who) + ": future must be [B, " + std::to_string(lf) +
                                ", " + std::to_string(o.dim()) + "], got " +
                                c10::str(future->sizes()));
  }
}

}  // namespace

torch::Tensor smooth_basis(int64_t frames, int64_t size) {
  if (size < 1 || size > frames) {
    throw std::invalid_argument("smooth_basis: size must be in 1.." + std::to_string(frames));
  }
  // Quarter-wave sines of s = (t + 1) / frames: every function is 0 at s = 0, the last history
  // frame, so any coefficients continue the history without a jump, with a free end at s = 1.
  auto s =
      (torch::arange(frames, torch::kFloat64).unsqueeze(1) + 1.0) / static_cast<double>(frames);
  auto k = torch::arange(size, torch::kFloat64).unsqueeze(0);
  auto b = torch::sin(M_PI * (2.0 * k + 1.0) * s / 2.0);
  // Orthonormal columns (Gram-Schmidt via QR), so that coefficients are b^T f.
  auto q = std::get<0>(torch::linalg_qr(b));
  return q.to(torch::kFloat32);
}

namespace {

// smooth_basis computed once per shape: it costs a QR, and the experts decode their variable at
// every Langevin step. Read-only.
const torch::Tensor& cached_basis(int64_t frames, int64_t size) {
  static std::mutex mutex;
  static std::map<std::pair<int64_t, int64_t>, torch::Tensor> cache;
  const std::lock_guard<std::mutex> lock(mutex);
  auto& b = cache[{frames, size}];
  if (!b.defined()) b = smooth_basis(frames, size);
  return b;
}

}  // namespace

torch::Tensor encode_future(const torch::Tensor& future, const TrajectoryNetOptions& o) {
  if (o.basis() <= 0) return future;
  const auto b = cached_basis(o.future(), o.basis()).to(future.device());
  return torch::einsum("fm,bfd->bmd", {b, future});
}

torch::Tensor decode_future(const torch::Tensor& latent, const TrajectoryNetOptions& o) {
  if (o.basis() <= 0) return latent;
  const auto b = cached_basis(o.future(), o.basis()).to(latent.device(), latent.scalar_type());
  return torch::einsum("fm,bmd->bfd", {b, latent});
}

torch::Tensor chain_windows(torch::Tensor history, int64_t frames, int64_t future,
                            const std::function<torch::Tensor(const torch::Tensor&)>& next) {
  if (history.dim() != 3 || frames < 1 || future < 1) {
    throw std::invalid_argument(
        "chain_windows: need histories [N, H, D], frames >= 1 and future >= 1");
  }
  const int64_t h = history.size(1);
  std::vector<torch::Tensor> chunks;
  for (int64_t have = 0; have < frames; have += future) {
    auto fut = next(history);
    if (fut.dim() != 3 || fut.size(0) != history.size(0) || fut.size(1) != future ||
        fut.size(2) != history.size(2)) {
      throw std::logic_error("chain_windows: next() must return [N, future, D]");
    }
    chunks.push_back(fut);
    history = torch::cat({history, fut}, 1).narrow(1, future, h).contiguous();
  }
  return torch::cat(chunks, 1).narrow(1, 0, frames);
}

TrajectoryEnergyNetImpl::TrajectoryEnergyNetImpl(const TrajectoryNetOptions& o) : options_(o) {
  if (o.dim() < 1 || o.history() < 1 || o.future() < 1 || o.channels() < 1 || o.layers() < 1) {
    throw std::invalid_argument(
        "TrajectoryEnergyNet: dim, history, future, channels, layers must be >= 1");
  }
  const int64_t len = o.history() + o.future();
  int64_t in = o.dim() + 2;
  for (int64_t l = 0; l < o.layers(); ++l) {
    const int64_t dil = int64_t{1} << l;
    convs_.push_back(register_module(
        "conv" + std::to_string(l),
        torch::nn::Conv1d(
            torch::nn::Conv1dOptions(in, o.channels(), 3).padding(dil).dilation(dil))));
    in = o.channels();
  }
  head_ = register_module("head", torch::nn::Linear(o.channels() * len, 1));
  if (o.basis() > 0) basis_ = register_buffer("basis", smooth_basis(o.future(), o.basis()));
  auto marks = torch::zeros({2, len});
  marks[0].narrow(0, o.history(), o.future()).fill_(1.0);
  marks[1] = torch::linspace(-1.0, 1.0, len);
  time_channels_ = register_buffer("time_channels", marks);
}

torch::Tensor TrajectoryEnergyNetImpl::energy(const torch::Tensor& x, const torch::Tensor& cond) {
  check_windows(options_, cond, &x, "TrajectoryEnergyNet");
  const int64_t b = x.size(0);
  const auto f = basis_.defined() ? torch::einsum("fm,bmd->bfd", {basis_.to(x.dtype()), x}) : x;
  auto seq = torch::cat({cond.to(x.dtype()), f}, 1).transpose(1, 2);  // [B, D, H + F]
  auto h = torch::cat({seq, time_channels_.to(x.dtype()).unsqueeze(0).expand({b, -1, -1})}, 1);
  for (auto& conv : convs_) h = torch::silu(conv->forward(h));
  auto e = head_->forward(h.flatten(1)).squeeze(1);
  if (options_.prior_weight() > 0)
    e = e + 0.5 * options_.prior_weight() * x.pow(2).flatten(1).sum(1);
  return e;
}

StateLimitEnergyImpl::StateLimitEnergyImpl(const TrajectoryNetOptions& o, torch::Tensor mean,
                                           torch::Tensor std, torch::Tensor delta_std,
                                           torch::Tensor lower, torch::Tensor upper)
    : options_(o) {
  for (const auto* t : {&mean, &std, &delta_std, &lower, &upper}) {
    if (t->numel() != o.dim())
      throw std::invalid_argument("StateLimitEnergy: every vector needs dim values");
  }
  mean_ = register_buffer("mean", mean.reshape({o.dim()}).to(torch::kFloat32));
  std_ = register_buffer("std", std.reshape({o.dim()}).to(torch::kFloat32));
  delta_std_ = register_buffer("delta_std", delta_std.reshape({o.dim()}).to(torch::kFloat32));
  lower_ = register_buffer("lower", lower.reshape({o.dim()}).to(torch::kFloat32));
  upper_ = register_buffer("upper", upper.reshape({o.dim()}).to(torch::kFloat32));
}

namespace {

// Raw frames [B, 1 + F, D] of a window in the models' variables: the last history frame, then the
// future (displacements from it).
torch::Tensor raw_last_and_future(const torch::Tensor& x, const torch::Tensor& cond,
                                  const TrajectoryNetOptions& o, const torch::Tensor& mean,
                                  const torch::Tensor& std, const torch::Tensor& delta_std) {
  const auto last = cond.select(1, o.history() - 1).unsqueeze(1) * std + mean;
  return torch::cat({last, last + decode_future(x, o) * delta_std}, 1);
}

// The gradient with respect to x of a function of the future's raw frames, from its gradient g
// [B, F, D] with respect to them: the adjoint of raw_last_and_future's future part (the decoder,
// then the displacement scale).
torch::Tensor future_grad_to_x(const torch::Tensor& g, const TrajectoryNetOptions& o,
                               const torch::Tensor& delta_std) {
  const auto gf = g * delta_std;
  if (o.basis() <= 0) return gf;
  const auto b = cached_basis(o.future(), o.basis()).to(g.device(), g.scalar_type());
  return torch::einsum("fm,bfd->bmd", {b, gf});
}

}  // namespace

torch::Tensor StateLimitEnergyImpl::energy(const torch::Tensor& x, const torch::Tensor& cond) {
  check_windows(options_, cond, &x, "StateLimitEnergy");
  const auto raw = raw_last_and_future(x, cond, options_, mean_, std_, delta_std_)
                       .narrow(1, 1, options_.future());
  const auto excess = (torch::relu(raw - upper_) + torch::relu(lower_ - raw)) / std_;
  return 0.5 * excess.pow(2).flatten(1).sum(1);
}

std::pair<torch::Tensor, torch::Tensor> StateLimitEnergyImpl::energy_and_grad(
    const torch::Tensor& x, const torch::Tensor& cond, double scale) {
  check_windows(options_, cond, &x, "StateLimitEnergy");
  torch::NoGradGuard no_grad;
  const auto raw = raw_last_and_future(x, cond, options_, mean_, std_, delta_std_)
                       .narrow(1, 1, options_.future());
  const auto above = torch::relu(raw - upper_), below = torch::relu(lower_ - raw);
  const auto e = 0.5 * ((above + below) / std_).pow(2).flatten(1).sum(1);
  // d/draw of 0.5 ((above + below) / std)^2 = (above - below) / std^2 (one of them is 0).
  const auto g = (above - below) / std_.pow(2) * scale;
  return {e, future_grad_to_x(g, options_, delta_std_)};
}

torch::Tensor kinematic_residual(const torch::Tensor& frames, const torch::Tensor& pos_cols,
                                 const torch::Tensor& vel_cols, double dt) {
  if (frames.dim() != 3 || frames.size(1) < 2 || pos_cols.dim() != 1 ||
      pos_cols.sizes() != vel_cols.sizes() || !(dt > 0)) {
    throw std::invalid_argument(
        "kinematic_residual: need frames [B, T >= 2, D], equal 1-D column lists and dt > 0");
  }
  const auto q = frames.index_select(2, pos_cols.to(frames.device(), torch::kLong));
  const auto v = frames.index_select(2, vel_cols.to(frames.device(), torch::kLong));
  const int64_t t = frames.size(1);
  return (q.narrow(1, 1, t - 1) - q.narrow(1, 0, t - 1)) / dt -
         0.5 * (v.narrow(1, 1, t - 1) + v.narrow(1, 0, t - 1));
}

KinematicEnergyImpl::KinematicEnergyImpl(const TrajectoryNetOptions& o, torch::Tensor mean,
                                         torch::Tensor std, torch::Tensor delta_std,
                                         torch::Tensor pos_cols, torch::Tensor vel_cols,
                                         torch::Tensor scale, double dt)
    : options_(o), dt_(dt) {
  for (const auto* t : {&mean, &std, &delta_std}) {
    if (t->numel() != o.dim())
      throw std::invalid_argument("KinematicEnergy: mean, std and delta_std need dim values");
  }
  const int64_t pairs = pos_cols.numel();
  if (pairs == 0 || vel_cols.numel() != pairs || scale.numel() != pairs) {
    throw std::invalid_argument(
        "KinematicEnergy: need one or more (position, velocity) column pairs and a scale for each");
  }
  const auto in_range = [&](const torch::Tensor& c) {
    return c.min().item<int64_t>() >= 0 && c.max().item<int64_t>() < o.dim();
  };
  if (!in_range(pos_cols.to(torch::kLong)) || !in_range(vel_cols.to(torch::kLong))) {
    throw std::invalid_argument("KinematicEnergy: a column is outside [0, dim)");
  }
  if (!(scale.min().item<double>() > 0) || !(dt > 0))
    throw std::invalid_argument("KinematicEnergy: scale and dt must be > 0");
  mean_ = register_buffer("mean", mean.reshape({o.dim()}).to(torch::kFloat32));
  std_ = register_buffer("std", std.reshape({o.dim()}).to(torch::kFloat32));
  delta_std_ = register_buffer("delta_std", delta_std.reshape({o.dim()}).to(torch::kFloat32));
  pos_cols_ =
      register_buffer("pos_cols", pos_cols.reshape({pairs}).to(mean_.device(), torch::kLong));
  vel_cols_ =
      register_buffer("vel_cols", vel_cols.reshape({pairs}).to(mean_.device(), torch::kLong));
  scale_ = register_buffer("scale", scale.reshape({pairs}).to(mean_.device(), torch::kFloat32));
  // The residual is affine in x: its Jacobian J has a column r(e_i) - r(0) per unit vector e_i of
  // x, and Q's Hessian J^T J has largest eigenvalue |J|_2^2.
  torch::NoGradGuard no_grad;
  const int64_t n = o.latent_frames() * o.dim();
  const auto units = torch::cat({torch::zeros({1, n}), torch::eye(n)}, 0)
                         .to(mean_.device(), torch::kFloat64)
                         .view({n + 1, o.latent_frames(), o.dim()});
  const auto cond = torch::zeros({n + 1, o.history(), o.dim()}, units.options());
  const auto r = residual_over_scale(units, cond).flatten(1);
  const auto jacobian = (r.narrow(0, 1, n) - r.narrow(0, 0, 1)).t();
  stiffness_ = std::pow(torch::linalg_svdvals(jacobian.cpu()).max().item<double>(), 2);
  if (!(stiffness_ > 0) || !std::isfinite(stiffness_)) {
    throw std::invalid_argument(
        "KinematicEnergy: the residuals do not depend on the future (no usable pairs)");
  }
}

torch::Tensor KinematicEnergyImpl::residual_over_scale(const torch::Tensor& x,
                                                       const torch::Tensor& cond) const {
  const auto raw = raw_last_and_future(x, cond, options_, mean_.to(x.dtype()), std_.to(x.dtype()),
                                       delta_std_.to(x.dtype()));
  return kinematic_residual(raw, pos_cols_, vel_cols_, dt_) / scale_.to(x.dtype());
}

torch::Tensor KinematicEnergyImpl::energy(const torch::Tensor& x, const torch::Tensor& cond) {
  check_windows(options_, cond, &x, "KinematicEnergy");
  return 0.5 / stiffness_ * residual_over_scale(x, cond).pow(2).flatten(1).sum(1);
}

std::pair<torch::Tensor, torch::Tensor> KinematicEnergyImpl::energy_and_grad(
    const torch::Tensor& x, const torch::Tensor& cond, double scale) {
  check_windows(options_, cond, &x, "KinematicEnergy");
  torch::NoGradGuard no_grad;
  const auto s = scale_.to(x.dtype());
  const auto r = residual_over_scale(x, cond);  // [B, F, P]
  const auto e = 0.5 / stiffness_ * r.pow(2).flatten(1).sum(1);
  // a = dE/d(residual); residual t = (q[t+1] - q[t]) / dt - (v[t+1] + v[t]) / 2 over the frames
  // 0 (the last history frame) .. F, so each frame gathers from the residuals on both sides.
  const auto a = r / s * (scale / stiffness_);
  const auto pad_before = [](const torch::Tensor& t) {
    return torch::cat({torch::zeros_like(t.narrow(1, 0, 1)), t}, 1);
  };
  const auto pad_after = [](const torch::Tensor& t) {
    return torch::cat({t, torch::zeros_like(t.narrow(1, 0, 1))}, 1);
  };
  const auto gq = (pad_before(a) - pad_after(a)) / dt_;  // [B, F + 1, P]
  const auto gv = -0.5 * (pad_before(a) + pad_after(a));
  auto g = torch::zeros({x.size(0), options_.future() + 1, options_.dim()}, x.options());
  g.index_add_(2, pos_cols_, gq).index_add_(2, vel_cols_, gv);
  return {e,
          future_grad_to_x(g.narrow(1, 1, options_.future()), options_, delta_std_.to(x.dtype()))};
}

GoalEnergyImpl::GoalEnergyImpl(const TrajectoryNetOptions& o, torch::Tensor mean, torch::Tensor std,
                               torch::Tensor delta_std, torch::Tensor jacobian, torch::Tensor state,
                               torch::Tensor point, torch::Tensor target)
    : options_(o) {
  for (const auto* t : {&mean, &std, &delta_std, &state}) {
    if (t->numel() != o.dim())
      throw std::invalid_argument("GoalEnergy: mean, std, delta_std and state need dim values");
  }
  if (jacobian.numel() != 3 * o.dim() || point.numel() != 3 || target.numel() != 3)
    throw std::invalid_argument("GoalEnergy: need a jacobian [3, dim], a point and a target [3]");
  if (!torch::isfinite(target).all().item<bool>())
    throw std::invalid_argument("GoalEnergy: the target is not finite");
  const auto f32 = [&](const torch::Tensor& t, std::vector<int64_t> shape) {
    return t.reshape(shape).to(mean.device(), torch::kFloat32);
  };
  mean_ = register_buffer("mean", f32(mean, {o.dim()}));
  std_ = register_buffer("std", f32(std, {o.dim()}));
  delta_std_ = register_buffer("delta_std", f32(delta_std, {o.dim()}));
  jacobian_ = register_buffer("jacobian", f32(jacobian, {3, o.dim()}));
  state_ = register_buffer("state", f32(state, {o.dim()}));
  point_ = register_buffer("point", f32(point, {3}));
  target_ = register_buffer("target", f32(target, {3}));
  // The last frame is b^T x per feature (b: the decoder's last row), so the Hessian is
  // (b b^T) kron (J diag(delta_std))^T (J diag(delta_std)): lambda = |b|^2 sigma_max(J S)^2.
  const auto unit = torch::eye(o.latent_frames()).unsqueeze(2);  // [latent, latent, 1]
  const auto one = TrajectoryNetOptions(1, o.history(), o.future()).basis(o.basis());
  const double b2 = decode_future(unit, one).select(1, o.future() - 1).pow(2).sum().item<double>();
  const auto js = (jacobian_ * delta_std_).to(torch::kFloat64).cpu();
  stiffness_ = b2 * std::pow(torch::linalg_matrix_norm(js, 2).item<double>(), 2);
  if (!(stiffness_ > 0)) {
    throw std::invalid_argument(
        "GoalEnergy: the goal point does not move with the features (zero jacobian)");
  }
}

torch::Tensor GoalEnergyImpl::position(const torch::Tensor& x, const torch::Tensor& cond) const {
  const auto raw = raw_last_and_future(x, cond, options_, mean_, std_, delta_std_)
                       .select(1, options_.future());  // the last future frame [B, D]
  return point_ + torch::matmul(raw - state_, jacobian_.t());
}

torch::Tensor GoalEnergyImpl::energy(const torch::Tensor& x, const torch::Tensor& cond) {
  check_windows(options_, cond, &x, "GoalEnergy");
  return 0.5 / stiffness_ * (position(x, cond) - target_).pow(2).sum(1);
}

std::pair<torch::Tensor, torch::Tensor> GoalEnergyImpl::energy_and_grad(const torch::Tensor& x,
                                                                        const torch::Tensor& cond,
                                                                        double scale) {
  check_windows(options_, cond, &x, "GoalEnergy");
  torch::NoGradGuard no_grad;
  const auto diff = position(x, cond) - target_;  // [B, 3]
  const auto e = 0.5 / stiffness_ * diff.pow(2).sum(1);
  // Only the last future frame moves the point: d/draw_last = J^T diff / lambda.
  auto g = torch::zeros({x.size(0), options_.future(), options_.dim()}, x.options());
  g.select(1, options_.future() - 1).copy_(torch::matmul(diff, jacobian_) * (scale / stiffness_));
  return {e, future_grad_to_x(g, options_, delta_std_)};
}

FeedforwardPredictorImpl::FeedforwardPredictorImpl(const TrajectoryNetOptions& o) : options_(o) {
  mlp_ = mlp(o.history() * o.dim(), o.channels() * 2, o.layers());
  mlp_->push_back(torch::nn::Linear(o.channels() * 2, o.latent_frames() * o.dim()));
  register_module("mlp", mlp_);
}

torch::Tensor FeedforwardPredictorImpl::forward(const torch::Tensor& history) {
  check_windows(options_, history, nullptr, "FeedforwardPredictor");
  return mlp_->forward(history.flatten(1))
      .view({history.size(0), options_.latent_frames(), options_.dim()});
}

torch::Tensor FeedforwardPredictorImpl::loss(const torch::Tensor& history,
                                             const torch::Tensor& future) {
  check_windows(options_, history, &future, "FeedforwardPredictor");
  return torch::mse_loss(forward(history), future);
}

MixtureDensityNetImpl::MixtureDensityNetImpl(const TrajectoryNetOptions& o) : options_(o) {
  if (o.components() < 1) throw std::invalid_argument("MixtureDensityNet: components must be >= 1");
  const int64_t w = o.channels() * 2, out = o.latent_frames() * o.dim();
  trunk_ = register_module("trunk", mlp(o.history() * o.dim(), w, o.layers()));
  logits_ = register_module("logits", torch::nn::Linear(w, o.components()));
  means_ = register_module("means", torch::nn::Linear(w, o.components() * out));
  log_std_ = register_module("log_std", torch::nn::Linear(w, o.components() * out));
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> MixtureDensityNetImpl::params(
    const torch::Tensor& history) {
  check_windows(options_, history, nullptr, "MixtureDensityNet");
  const int64_t b = history.size(0), k = options_.components(),
                out = options_.latent_frames() * options_.dim();
  auto h = trunk_->forward(history.flatten(1));
  auto log_std = log_std_->forward(h).view({b, k, out}).clamp(-7.0, 3.0);
  return {logits_->forward(h), means_->forward(h).view({b, k, out}), log_std};
}

torch::Tensor MixtureDensityNetImpl::loss(const torch::Tensor& history,
                                          const torch::Tensor& future) {
  check_windows(options_, history, &future, "MixtureDensityNet");
  auto [logits, mean, log_std] = params(history);
  auto y = future.flatten(1).unsqueeze(1);  // [B, 1, F*D]
  auto z = (y - mean) * torch::exp(-log_std);
  auto log_n = (-0.5 * z.pow(2) - log_std - 0.5 * std::log(2 * M_PI)).sum(2);  // [B, K]
  auto log_p = torch::logsumexp(torch::log_softmax(logits, 1) + log_n, 1);
  return -log_p.mean() / static_cast<double>(options_.latent_frames() * options_.dim());
}

torch::Tensor MixtureDensityNetImpl::sample(const torch::Tensor& history, int64_t n,
                                            std::optional<at::Generator> gen) {
  torch::NoGradGuard no_grad;
  auto [logits, mean, log_std] = params(history);
  const int64_t b = history.size(0), out = options_.latent_frames() * options_.dim();
  auto comp =
      torch::multinomial(torch::softmax(logits, 1), n, /*replacement=*/true, gen);  // [B, n]
  auto idx = comp.unsqueeze(2).expand({b, n, out});
  auto mu = mean.gather(1, idx), sd = log_std.gather(1, idx).exp();
  auto eps = torch::randn({b, n, out}, gen, mu.options());
  return (mu + sd * eps).view({b, n, options_.latent_frames(), options_.dim()});
}

}  // namespace ebm
