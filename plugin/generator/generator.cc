#include "plugin/generator/generator.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <sstream>
#include <utility>
#include <vector>

#include "ebm/nets/trajectory_generator.h"
#include "plugin/common/plugin_util.h"

namespace ebm::generator {

Generator::Generator(GeneratorConfig config) : config_(std::move(config)) {}

Generator::~Generator() {
  if (scratch_) mj_deleteData(scratch_);
}

bool Generator::LoadCheckpoint(const mjModel* m) {
  auto fail = [](const std::string& what) {
    plugin::warn_attribute(kPluginName, kAttrCheckpoint, what);
    return false;
  };
  const std::string& path = config_.checkpoint;
  try {
    model_ = TrajectoryGenerator::load(path);
  } catch (const std::exception& e) {
    return fail(std::string("cannot load: ") + e.what());
  }
  const auto& meta = model_->meta();
  const uint64_t hash = plugin::model_hash(m);
  if (meta.nq != m->nq || meta.nv != m->nv || meta.model_hash != hash) {
    std::ostringstream msg;
    msg << path << " was trained on another state layout (nq " << meta.nq << ", nv " << meta.nv
        << ", model hash " << std::hex << meta.model_hash << "; this model: nq " << std::dec
        << m->nq << ", nv " << m->nv << ", hash " << std::hex << hash << ")";
    return fail(msg.str());
  }
  // Features: "field" or "field[a:b]" of qpos, qvel, ctrl, act.
  static const std::regex kFeature(R"(([a-z]+)(\[(\d+):(\d+)\])?)");
  std::istringstream in(meta.features);
  std::string tok;
  while (in >> tok) {
    std::smatch mt;
    if (!std::regex_match(tok, mt, kFeature)) return fail("unreadable feature '" + tok + "'");
    StateSlice s;
    int size = 0;
    if (mt[1] == "qpos")
      s.field = StateSlice::Field::kQpos, size = m->nq;
    else if (mt[1] == "qvel")
      s.field = StateSlice::Field::kQvel, size = m->nv;
    else if (mt[1] == "ctrl")
      s.field = StateSlice::Field::kCtrl, size = m->nu;
    else if (mt[1] == "act")
      s.field = StateSlice::Field::kAct, size = m->na;
    else
      return fail("feature '" + tok +
                  "' is not a state the generator can read (qpos, qvel, ctrl, act)");
    s.begin = mt[2].matched ? std::stoi(mt[3]) : 0;
    const int end = mt[2].matched ? std::stoi(mt[4]) : size;
    if (s.begin >= end || end > size) {
      return fail("feature '" + tok + "' outside this model's " + std::string(mt[1]));
    }
    s.count = end - s.begin;
    slices_.push_back(s);
    dim_ += s.count;
  }
  if (dim_ != meta.dim) {
    return fail("features give " + std::to_string(dim_) + " values, the net expects " +
                std::to_string(meta.dim));
  }
  history_len_ = static_cast<int>(meta.history);
  decimation_ = static_cast<int>(meta.decimation);
  if (config_.every == 0) config_.every = meta.decimation * meta.future;
  if (config_.horizon == 0) config_.horizon = static_cast<int>(meta.future);
  return true;
}

std::unique_ptr<Generator> Generator::Create(const mjModel* m, mjData* d, int instance) {
  (void)d;
  auto config = GeneratorConfig::FromModel(m, instance);
  if (!config) return nullptr;
  std::unique_ptr<Generator> g(new Generator(std::move(*config)));
  if (!g->LoadCheckpoint(m)) return nullptr;
  g->history_.assign(static_cast<size_t>(g->history_len_) * g->dim_, 0.0f);
  return g;
}

void Generator::ReadFeatures(const mjModel* m, const mjData* d, float* out) const {
  (void)m;
  for (const auto& s : slices_) {
    const double* src = s.field == StateSlice::Field::kQpos   ? d->qpos
                        : s.field == StateSlice::Field::kQvel ? d->qvel
                        : s.field == StateSlice::Field::kCtrl ? d->ctrl
                                                              : d->act;
    for (int i = 0; i < s.count; ++i) *out++ = static_cast<float>(src[s.begin + i]);
  }
}

void Generator::Reset() {
  frames_seen_ = 0;
  step_ = 0;
  since_sample_ = 0;
  futures_.clear();
}

void Generator::Compute(const mjModel* m, mjData* d, int instance) {
  const mjtNum values[] = {static_cast<mjtNum>(samplings_), last_latency_ms_};
  plugin::fill_sensors(m, d, instance, values, 2);
}

void Generator::Advance(const mjModel* m, mjData* d) {
  ++step_;
  ++since_sample_;
  if (step_ % decimation_ != 0) return;
  // Shift the ring left by one frame and append the current state.
  const size_t fd = static_cast<size_t>(dim_);
  std::memmove(history_.data(), history_.data() + fd, sizeof(float) * (history_.size() - fd));
  ReadFeatures(m, d, history_.data() + history_.size() - fd);
  ++frames_seen_;
  if (frames_seen_ >= history_len_ && (futures_.empty() || since_sample_ >= config_.every))
    Sample(m, d);
}

std::vector<double> Generator::goal_target_now(const mjData* d) const {
  if (config_.goal_mocap < 0) return config_.goal_target;
  const mjtNum* p = d->mocap_pos + 3 * config_.goal_mocap;
  return {p[0], p[1], p[2]};
}

bool Generator::set_goal(const mjModel* m, const mjData* d) {
  if (!scratch_) scratch_ = mj_makeData(m);
  std::memcpy(scratch_->qpos, d->qpos, sizeof(mjtNum) * m->nq);
  const auto jq = plugin::site_jacobian_qpos(m, scratch_, config_.goal_site);
  auto jacobian = torch::zeros({3, dim_}, torch::kFloat64);
  int col = 0;
  for (const auto& s : slices_) {
    for (int i = 0; i < s.count; ++i, ++col) {
      if (s.field != StateSlice::Field::kQpos) continue;
      for (int r = 0; r < 3; ++r) jacobian[r][col] = jq[r * m->nq + s.begin + i];
    }
  }
  const mjtNum* p = scratch_->site_xpos + 3 * config_.goal_site;
  const auto state =
      torch::from_blob(history_.data() + history_.size() - dim_, {dim_}, torch::kFloat32).clone();
  try {
    model_->set_goal(jacobian, state, torch::tensor({p[0], p[1], p[2]}, torch::kFloat64),
                     torch::tensor(goal_target_now(d), torch::kFloat64), config_.goal_weight);
  } catch (const std::exception& e) {
    mju_warning("%s: goal not set: %s", kPluginName, e.what());
    model_->clear_goal();
    return false;
  }
  return true;
}

void Generator::Sample(const mjModel* m, mjData* d) {
  const auto t0 = std::chrono::steady_clock::now();
  if (config_.goal_site >= 0) set_goal(m, d);
  try {
    auto h = torch::from_blob(history_.data(), {1, history_len_, dim_}, torch::kFloat32).clone();
    auto out = model_->sample(h, config_.samples, config_.horizon, config_.steps)
                   .contiguous();  // [1, K, T, D]
    futures_.assign(out.data_ptr<float>(), out.data_ptr<float>() + out.numel());
    ++samplings_;
  } catch (const std::exception& e) {
    mju_warning("%s: sampling failed: %s", kPluginName, e.what());
  }
  since_sample_ = 0;
  last_latency_ms_ =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void Generator::Visualize(const mjModel* m, mjData* d, const mjvOption*, mjvScene* scn) {
  if (config_.goal_site >= 0 && scn->ngeom < scn->maxgeom) {
    const auto target = goal_target_now(d);
    const mjtNum size[3] = {0.008, 0.008, 0.008};
    const mjtNum pos[3] = {target[0], target[1], target[2]};
    static const float kGoalColor[4] = {1.0f, 0.1f, 0.8f, 0.8f};
    mjvGeom* g = scn->geoms + scn->ngeom;
    mjv_initGeom(g, mjGEOM_SPHERE, size, pos, nullptr, kGoalColor);
    g->category = mjCAT_DECOR;
    ++scn->ngeom;
  }
  if (futures_.empty() || config_.sites.empty()) return;
  if (!scratch_) scratch_ = mj_makeData(m);
  static const float kColors[4][4] = {{0.9f, 0.2f, 0.2f, 0.6f},
                                      {0.2f, 0.5f, 0.95f, 0.6f},
                                      {0.2f, 0.8f, 0.3f, 0.6f},
                                      {0.95f, 0.7f, 0.1f, 0.6f}};
  for (int k = 0; k < config_.samples; ++k) {
    std::vector<mjtNum> prev(3 * config_.sites.size());
    for (int t = 0; t < config_.horizon; ++t) {
      // The current state with the generated coordinates written in.
      std::memcpy(scratch_->qpos, d->qpos, sizeof(mjtNum) * m->nq);
      const float* f = futures_.data() + (static_cast<size_t>(k) * config_.horizon + t) * dim_;
      for (const auto& s : slices_) {
        if (s.field == StateSlice::Field::kQpos) {
          for (int i = 0; i < s.count; ++i) scratch_->qpos[s.begin + i] = f[i];
        }
        f += s.count;
      }
      mj_kinematics(m, scratch_);
      for (size_t s = 0; s < config_.sites.size(); ++s) {
        const mjtNum* p = scratch_->site_xpos + 3 * config_.sites[s];
        if (t > 0 && scn->ngeom < scn->maxgeom) {
          mjvGeom* g = scn->geoms + scn->ngeom;
          mjv_initGeom(g, mjGEOM_LINE, nullptr, nullptr, nullptr, kColors[k % 4]);
          mjv_connector(g, mjGEOM_LINE, 3, prev.data() + 3 * s, p);
          g->category = mjCAT_DECOR;
          ++scn->ngeom;
        }
        std::memcpy(prev.data() + 3 * s, p, sizeof(mjtNum) * 3);
      }
    }
  }
}

void RegisterPlugin() {
  mjpPlugin plugin;
  mjp_defaultPlugin(&plugin);
  plugin.name = kPluginName;
  plugin.capabilityflags |= mjPLUGIN_SENSOR;
  plugin.nattribute = sizeof(kAttributes) / sizeof(kAttributes[0]);
  plugin.attributes = kAttributes;
  plugin.nsensordata = +[](const mjModel*, int, int) { return 2; };
  plugin.needstage = mjSTAGE_POS;
  plugin::set_instance_lifecycle<Generator>(plugin);
  plugin.compute = +[](const mjModel* m, mjData* d, int instance, int) {
    if (auto* g = plugin::instance_data<Generator>(d, instance)) g->Compute(m, d, instance);
  };
  plugin.advance = +[](const mjModel* m, mjData* d, int instance) {
    if (auto* g = plugin::instance_data<Generator>(d, instance)) g->Advance(m, d);
  };
  plugin.visualize =
      +[](const mjModel* m, mjData* d, const mjvOption* opt, mjvScene* scn, int instance) {
        if (auto* g = plugin::instance_data<Generator>(d, instance)) g->Visualize(m, d, opt, scn);
      };
  mjp_registerPlugin(&plugin);
}

}  // namespace ebm::generator

namespace {

// The first ebm.generator instance of d (null when there is none).
ebm::generator::Generator* first_generator(const mjModel* m, mjData* d) {
  ebm::generator::Generator* first = nullptr;
  ebm::plugin::for_each_instance<ebm::generator::Generator>(m, d, ebm::generator::kPluginName,
                                                            [&](ebm::generator::Generator* g) {
                                                              if (!first) first = g;
                                                            });
  return first;
}

}  // namespace

extern "C" {

int ebm_generator_futures(const mjModel* m, mjData* d, float* out, int capacity, int* k,
                          int* frames, int* dim) {
  auto* g = first_generator(m, d);
  if (!g) return -1;
  if (k) *k = g->samples();
  if (frames) *frames = g->horizon();
  if (dim) *dim = g->dim();
  const auto& f = g->futures();
  if (f.empty()) return 0;
  if (static_cast<int>(f.size()) > capacity) return -1;
  std::memcpy(out, f.data(), sizeof(float) * f.size());
  return static_cast<int>(f.size());
}

double ebm_generator_last_latency_ms(const mjModel* m, mjData* d) {
  auto* g = first_generator(m, d);
  return g ? g->last_latency_ms() : -1.0;
}

}  // extern "C"
