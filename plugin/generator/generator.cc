#include "plugin/generator/generator.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <sstream>

#include "ebm/nets/trajectory_generator.h"
#include "plugin/recorder/recorder.h"

namespace ebm::generator {

namespace {

std::unique_ptr<Generator> Fail(const std::string& attr, const std::string& what) {
  mju_warning("%s: attribute '%s': %s", kPluginName, attr.c_str(), what.c_str());
  return nullptr;
}

bool ParseInt(const char* text, long min, long* out) {
  if (!text || !text[0]) return true;  // keep the default
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < min) return false;
  *out = v;
  return true;
}

}  // namespace

Generator::~Generator() {
  if (scratch_) mj_deleteData(scratch_);
}

std::unique_ptr<Generator> Generator::Create(const mjModel* m, mjData* d, int instance) {
  std::unique_ptr<Generator> g(new Generator());
  const char* path = mj_getPluginConfig(m, instance, kAttrCheckpoint);
  if (!path || !path[0])
    return Fail(kAttrCheckpoint, "missing; give models/generator.pt of `ebm traj train`");
  try {
    g->model_ = TrajectoryGenerator::load(path);
  } catch (const std::exception& e) {
    return Fail(kAttrCheckpoint, std::string("cannot load: ") + e.what());
  }
  const auto& meta = g->model_->meta();
  const uint64_t hash = recorder::model_hash(m);
  if (meta.nq != m->nq || meta.nv != m->nv || meta.model_hash != hash) {
    std::ostringstream msg;
    msg << path << " was trained on another state layout (nq " << meta.nq << ", nv " << meta.nv
        << ", model hash " << std::hex << meta.model_hash << "; this model: nq " << std::dec
        << m->nq << ", nv " << m->nv << ", hash " << std::hex << hash << ")";
    return Fail(kAttrCheckpoint, msg.str());
  }
  // Features: "field" or "field[a:b]" of qpos, qvel, ctrl, act.
  static const std::regex re(R"(([a-z]+)(\[(\d+):(\d+)\])?)");
  std::istringstream in(meta.features);
  std::string tok;
  while (in >> tok) {
    std::smatch mt;
    if (!std::regex_match(tok, mt, re))
      return Fail(kAttrCheckpoint, "unreadable feature '" + tok + "'");
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
      return Fail(
          kAttrCheckpoint,
          "feature '" + tok + "' is not a state the generator can read (qpos, qvel, ctrl, act)");
    s.begin = mt[2].matched ? std::stoi(mt[3]) : 0;
    const int end = mt[2].matched ? std::stoi(mt[4]) : size;
    if (s.begin >= end || end > size)
      return Fail(kAttrCheckpoint,
                  "feature '" + tok + "' outside this model's " + std::string(mt[1]));
    s.count = end - s.begin;
    g->slices_.push_back(s);
    g->dim_ += s.count;
  }
  if (g->dim_ != meta.dim)
    return Fail(kAttrCheckpoint, "features give " + std::to_string(g->dim_) +
                                     " values, the net expects " + std::to_string(meta.dim));
  g->history_len_ = static_cast<int>(meta.history);
  g->decimation_ = static_cast<int>(meta.decimation);
  long every = meta.decimation * meta.future, samples = 8, horizon = meta.future, steps = 0;
  const char* v = mj_getPluginConfig(m, instance, kAttrEvery);
  if (!ParseInt(v, 1, &every))
    return Fail(kAttrEvery, std::string("must be an integer >= 1, got '") + v + "'");
  v = mj_getPluginConfig(m, instance, kAttrSamples);
  if (!ParseInt(v, 1, &samples) || samples > 1024)
    return Fail(kAttrSamples, std::string("must be an integer in 1..1024, got '") + v + "'");
  v = mj_getPluginConfig(m, instance, kAttrHorizon);
  if (!ParseInt(v, 1, &horizon) || horizon > 100000)
    return Fail(kAttrHorizon, std::string("must be an integer >= 1, got '") + v + "'");
  v = mj_getPluginConfig(m, instance, kAttrSteps);
  if (!ParseInt(v, 0, &steps))
    return Fail(kAttrSteps, std::string("must be an integer >= 0, got '") + v + "'");
  g->every_ = every, g->samples_ = static_cast<int>(samples),
  g->horizon_ = static_cast<int>(horizon);
  g->steps_ = static_cast<int>(steps);
  if (const char* s = mj_getPluginConfig(m, instance, kAttrSites); s && s[0]) {
    std::istringstream names(s);
    std::string name;
    while (names >> name) {
      const int id = mj_name2id(m, mjOBJ_SITE, name.c_str());
      if (id < 0) return Fail(kAttrSites, "no site named '" + name + "'");
      g->sites_.push_back(id);
    }
  }
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
  for (int i = 0; i < m->nsensor; ++i) {
    if (m->sensor_type[i] == mjSENS_PLUGIN && m->sensor_plugin[i] == instance) {
      d->sensordata[m->sensor_adr[i]] = static_cast<mjtNum>(samplings_);
      if (m->sensor_dim[i] > 1) d->sensordata[m->sensor_adr[i] + 1] = last_latency_ms_;
    }
  }
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
  if (frames_seen_ >= history_len_ && (futures_.empty() || since_sample_ >= every_)) Sample(m, d);
}

void Generator::Sample(const mjModel* m, mjData* d) {
  (void)m;
  (void)d;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    auto h = torch::from_blob(history_.data(), {1, history_len_, dim_}, torch::kFloat32).clone();
    auto out = model_->sample(h, samples_, horizon_, steps_).contiguous();  // [1, K, T, D]
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
  if (futures_.empty() || sites_.empty()) return;
  if (!scratch_) scratch_ = mj_makeData(m);
  static const float colors[4][4] = {{0.9f, 0.2f, 0.2f, 0.6f},
                                     {0.2f, 0.5f, 0.95f, 0.6f},
                                     {0.2f, 0.8f, 0.3f, 0.6f},
                                     {0.95f, 0.7f, 0.1f, 0.6f}};
  for (int k = 0; k < samples_; ++k) {
    std::vector<mjtNum> prev(3 * sites_.size());
    for (int t = 0; t < horizon_; ++t) {
      // The current state with the generated coordinates written in.
      std::memcpy(scratch_->qpos, d->qpos, sizeof(mjtNum) * m->nq);
      const float* f = futures_.data() + (static_cast<size_t>(k) * horizon_ + t) * dim_;
      for (const auto& s : slices_) {
        if (s.field == StateSlice::Field::kQpos) {
          for (int i = 0; i < s.count; ++i) scratch_->qpos[s.begin + i] = f[i];
        }
        f += s.count;
      }
      mj_kinematics(m, scratch_);
      for (size_t s = 0; s < sites_.size(); ++s) {
        const mjtNum* p = scratch_->site_xpos + 3 * sites_[s];
        if (t > 0 && scn->ngeom < scn->maxgeom) {
          mjvGeom* g = scn->geoms + scn->ngeom;
          mjv_initGeom(g, mjGEOM_LINE, nullptr, nullptr, nullptr, colors[k % 4]);
          mjv_connector(g, mjGEOM_LINE, 3, prev.data() + 3 * s, p);
          g->category = mjCAT_DECOR;
          ++scn->ngeom;
        }
        std::memcpy(prev.data() + 3 * s, p, sizeof(mjtNum) * 3);
      }
    }
  }
}

namespace {

Generator* Get(const mjData* d, int instance) {
  return reinterpret_cast<Generator*>(d->plugin_data[instance]);
}

}  // namespace

void RegisterPlugin() {
  mjpPlugin plugin;
  mjp_defaultPlugin(&plugin);
  plugin.name = kPluginName;
  plugin.capabilityflags |= mjPLUGIN_SENSOR;
  static const char* attributes[] = {kAttrCheckpoint, kAttrEvery, kAttrSamples,
                                     kAttrHorizon,    kAttrSteps, kAttrSites};
  plugin.nattribute = sizeof(attributes) / sizeof(attributes[0]);
  plugin.attributes = attributes;
  plugin.nstate = +[](const mjModel*, int) { return 0; };
  plugin.nsensordata = +[](const mjModel*, int, int) { return 2; };
  plugin.needstage = mjSTAGE_POS;
  plugin.init = +[](const mjModel* m, mjData* d, int instance) {
    auto g = Generator::Create(m, d, instance);
    if (!g) return -1;
    d->plugin_data[instance] = reinterpret_cast<uintptr_t>(g.release());
    return 0;
  };
  plugin.destroy = +[](mjData* d, int instance) {
    delete Get(d, instance);
    d->plugin_data[instance] = 0;
  };
  plugin.reset = +[](const mjModel*, mjtNum*, void* data, int) {
    if (data) static_cast<Generator*>(data)->Reset();
  };
  plugin.compute = +[](const mjModel* m, mjData* d, int instance, int) {
    if (auto* g = Get(d, instance)) g->Compute(m, d, instance);
  };
  plugin.advance = +[](const mjModel* m, mjData* d, int instance) {
    if (auto* g = Get(d, instance)) g->Advance(m, d);
  };
  plugin.visualize =
      +[](const mjModel* m, mjData* d, const mjvOption* opt, mjvScene* scn, int instance) {
        if (auto* g = Get(d, instance)) g->Visualize(m, d, opt, scn);
      };
  mjp_registerPlugin(&plugin);
}

}  // namespace ebm::generator

namespace {

ebm::generator::Generator* First(const mjModel* m, mjData* d) {
  for (int i = 0; i < m->nplugin; ++i) {
    const mjpPlugin* p = mjp_getPluginAtSlot(m->plugin[i]);
    if (p && std::strcmp(p->name, ebm::generator::kPluginName) == 0 && d->plugin_data[i]) {
      return reinterpret_cast<ebm::generator::Generator*>(d->plugin_data[i]);
    }
  }
  return nullptr;
}

}  // namespace

extern "C" {

int ebm_generator_futures(const mjModel* m, mjData* d, float* out, int capacity, int* k,
                          int* frames, int* dim) {
  auto* g = First(m, d);
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
  auto* g = First(m, d);
  return g ? g->last_latency_ms() : -1.0;
}

}  // extern "C"
