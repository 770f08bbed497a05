#include "plugin/recorder/recorder.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>

namespace ebm::recorder {
namespace fs = std::filesystem;
using trajectory::FileHeader;

namespace {

std::atomic<uint64_t> g_next_episode_id{0};
std::atomic<uint64_t> g_next_shard{0};

void hash_bytes(uint64_t& h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
}
template <typename T>
void hash_array(uint64_t& h, const T* data, long n) {
  if (data && n > 0) hash_bytes(h, data, sizeof(T) * static_cast<size_t>(n));
  hash_bytes(h, &n, sizeof(n));
}

std::string name_of(const mjModel* m, int type, int id) {
  const char* n = mj_id2name(m, type, id);
  return n ? n : "";
}

std::optional<long> parse_int(const char* text, long min, long fallback, bool* ok) {
  *ok = true;
  if (!text || !text[0]) return fallback;
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < min) {
    *ok = false;
    return std::nullopt;
  }
  return v;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string sanitize(std::string s) {
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') c = '_';
  }
  return s.empty() ? "model" : s;
}

}  // namespace

// One open trajectory file, shared by every recorder of the process that writes to the same path.
class SharedWriter {
 public:
  SharedWriter(const std::string& path, const FileHeader& header, trajectory::SyncPolicy sync)
      : writer_(path, header, sync, /*append=*/true) {}
  void append(const trajectory::Episode& e) {
    std::lock_guard<std::mutex> lock(mu_);
    writer_.append(e);
  }
  const FileHeader& header() const { return writer_.header(); }

  // The writer for `path`, opened on first use and shared while any recorder holds it. Throws
  // when the open file belongs to another model or layout.
  static std::shared_ptr<SharedWriter> ForPath(const std::string& path, const FileHeader& header,
                                               trajectory::SyncPolicy sync) {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto& slot = registry()[key(path)];
    if (auto w = slot.lock()) {
      trajectory::check_compatible(w->header(), header, path);
      return w;
    }
    auto w = std::make_shared<SharedWriter>(path, header, sync);
    slot = w;
    return w;
  }

  // Whether recorders with `header` may append to `path`: checked against the writer this process
  // has open for it, else against the file's header. Under the registry lock, so a file another
  // thread is creating right now (header not yet written) is never mistaken for a foreign one.
  static void CheckPath(const std::string& path, const FileHeader& header) {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto it = registry().find(key(path));
    if (it != registry().end()) {
      if (auto w = it->second.lock()) {
        trajectory::check_compatible(w->header(), header, path);
        return;
      }
    }
    std::error_code ec;
    if (fs::exists(path, ec))
      trajectory::check_compatible(trajectory::read_file_header(path), header, path);
  }

 private:
  static std::mutex& registry_mutex() {
    static std::mutex mu;
    return mu;
  }
  static std::map<std::string, std::weak_ptr<SharedWriter>>& registry() {
    static std::map<std::string, std::weak_ptr<SharedWriter>> r;
    return r;
  }
  static std::string key(const std::string& path) {
    return fs::absolute(path).lexically_normal().string();
  }
  std::mutex mu_;
  trajectory::TrajectoryWriter writer_;
};

uint64_t model_hash(const mjModel* m) {
  uint64_t h = 1469598103934665603ull;
  // Sensors are left out: plugins (the recorder, the generator) add sensors of their own, and
  // the recorded frame layout already pins the sizes of recorded sensor data.
  const long sizes[] = {m->nq,    m->nv,    m->nu,     m->na,  m->nbody,  m->njnt,
                        m->ngeom, m->nsite, m->nmocap, m->neq, m->ntendon};
  hash_array(h, sizes, sizeof(sizes) / sizeof(sizes[0]));
  hash_array(h, &m->opt.timestep, 1);
  hash_array(h, m->jnt_type, m->njnt);
  hash_array(h, m->jnt_qposadr, m->njnt);
  hash_array(h, m->jnt_range, 2L * m->njnt);
  hash_array(h, m->body_parentid, m->nbody);
  hash_array(h, m->body_mass, m->nbody);
  hash_array(h, m->geom_type, m->ngeom);
  hash_array(h, m->geom_size, 3L * m->ngeom);
  hash_array(h, m->actuator_ctrlrange, 2L * m->nu);
  hash_array(h, m->actuator_gainprm, static_cast<long>(mjNGAIN) * m->nu);
  hash_array(h, m->qpos0, m->nq);
  for (int type : {mjOBJ_BODY, mjOBJ_JOINT, mjOBJ_ACTUATOR, mjOBJ_SITE}) {
    const int n = type == mjOBJ_BODY       ? m->nbody
                  : type == mjOBJ_JOINT    ? m->njnt
                  : type == mjOBJ_ACTUATOR ? m->nu
                                           : m->nsite;
    for (int i = 0; i < n; ++i) {
      const std::string s = name_of(m, type, i);
      hash_bytes(h, s.c_str(), s.size() + 1);
    }
  }
  return h;
}

std::optional<std::vector<FieldSource>> parse_fields(const mjModel* m, const std::string& text,
                                                     std::string* error) {
  using K = FieldSource::Kind;
  std::vector<FieldSource> out;
  std::string spaced = text;
  for (char& c : spaced) {
    if (c == ',') c = ' ';
  }
  std::istringstream in(spaced);
  std::string tok;
  auto element_names = [&](int type, int n, int per) {
    std::vector<std::string> names;
    for (int i = 0; i < n; ++i) {
      for (int k = 0; k < per; ++k) {
        names.push_back(name_of(m, type, i) + (per > 1 ? "[" + std::to_string(k) + "]" : ""));
      }
    }
    return names;
  };
  while (in >> tok) {
    FieldSource f;
    f.name = tok;
    if (tok == "time") {
      f.kind = K::kTime, f.size = 1;
    } else if (tok == "qpos") {
      f.kind = K::kQpos, f.size = m->nq;
      // Per-coordinate names: the joint's name, with [k] for multi-coordinate joints.
      for (int j = 0; j < m->njnt; ++j) {
        const int n = m->jnt_type[j] == mjJNT_FREE ? 7 : m->jnt_type[j] == mjJNT_BALL ? 4 : 1;
        for (int k = 0; k < n; ++k) {
          f.element_names.push_back(name_of(m, mjOBJ_JOINT, j) +
                                    (n > 1 ? "[" + std::to_string(k) + "]" : ""));
        }
      }
    } else if (tok == "qvel" || tok == "qacc") {
      f.kind = tok == "qvel" ? K::kQvel : K::kQacc, f.size = m->nv;
      for (int v = 0; v < m->nv; ++v)
        f.element_names.push_back(name_of(m, mjOBJ_JOINT, m->dof_jntid[v]));
    } else if (tok == "act") {
      f.kind = K::kAct, f.size = m->na;
    } else if (tok == "ctrl") {
      f.kind = K::kCtrl, f.size = m->nu;
      f.element_names = element_names(mjOBJ_ACTUATOR, m->nu, 1);
    } else if (tok == "sensordata") {
      f.kind = K::kSensordata, f.size = m->nsensordata;
    } else if (tok == "mocap_pos") {
      f.kind = K::kMocapPos, f.size = 3 * m->nmocap;
    } else if (tok == "mocap_quat") {
      f.kind = K::kMocapQuat, f.size = 4 * m->nmocap;
    } else if (tok.rfind("sensor:", 0) == 0 || tok.rfind("site:", 0) == 0) {
      const bool sensor = tok[1] == 'e';
      const std::string name = tok.substr(tok.find(':') + 1);
      const int id = mj_name2id(m, sensor ? mjOBJ_SENSOR : mjOBJ_SITE, name.c_str());
      if (id < 0) {
        *error =
            "no " + std::string(sensor ? "sensor" : "site") + " named '" + name + "' in the model";
        return std::nullopt;
      }
      f.kind = sensor ? K::kSensor : K::kSite;
      f.size = sensor ? m->sensor_dim[id] : 3;
      f.index = sensor ? m->sensor_adr[id] : id;
    } else {
      *error = "unknown field '" + tok +
               "' (known: time qpos qvel act ctrl qacc sensordata mocap_pos mocap_quat "
               "sensor:<name> site:<name>)";
      return std::nullopt;
    }
    for (const auto& g : out) {
      if (g.name == f.name) {
        *error = "field '" + tok + "' listed twice";
        return std::nullopt;
      }
    }
    out.push_back(std::move(f));
  }
  if (out.empty()) {
    *error = "no fields listed";
    return std::nullopt;
  }
  return out;
}

Recorder::Recorder(const mjModel* m, mjData* d, int instance) : m_(m), d_(d), instance_(instance) {}

std::unique_ptr<Recorder> Recorder::Create(const mjModel* m, mjData* d, int instance) {
  auto fail = [](const std::string& attr, const std::string& what) {
    mju_warning("%s: attribute '%s': %s", kPluginName, attr.c_str(), what.c_str());
    return nullptr;
  };
  std::unique_ptr<Recorder> r(new Recorder(m, d, instance));
  const char* path = mj_getPluginConfig(m, instance, kAttrPath);
  if (!path || !path[0])
    return fail(kAttrPath, "missing; give an output file (*.ebmtraj) or directory");
  r->path_ = path;
  r->directory_mode_ = !ends_with(r->path_, trajectory::kFileSuffix);

  const char* fields = mj_getPluginConfig(m, instance, kAttrFields);
  std::string error;
  auto parsed = parse_fields(m, fields && fields[0] ? fields : "qpos qvel ctrl", &error);
  if (!parsed) return fail(kAttrFields, error);
  r->fields_ = std::move(*parsed);

  bool ok = true;
  const char* dec = mj_getPluginConfig(m, instance, kAttrDecimation);
  r->decimation_ = static_cast<int>(parse_int(dec, 1, 1, &ok).value_or(0));
  if (!ok || r->decimation_ > 1000000) {
    return fail(kAttrDecimation, "must be an integer >= 1, got '" + std::string(dec) + "'");
  }
  const char* steps = mj_getPluginConfig(m, instance, kAttrEpisodeSteps);
  r->episode_steps_ = parse_int(steps, 0, 0, &ok).value_or(0);
  if (!ok)
    return fail(kAttrEpisodeSteps, "must be an integer >= 0, got '" + std::string(steps) + "'");
  const char* flush = mj_getPluginConfig(m, instance, kAttrFlush);
  const auto sync = trajectory::parse_sync_policy(flush && flush[0] ? flush : "episode");
  if (!sync)
    return fail(kAttrFlush, "must be episode, close or none, got '" + std::string(flush) + "'");
  r->sync_ = *sync;

  FileHeader& h = r->header_;
  h.set_format_version(trajectory::kFormatVersion);
  h.set_model_name(m->names[0] ? m->names : "model");
  h.set_model_hash(model_hash(m));
  h.set_timestep(m->opt.timestep);
  h.set_decimation(static_cast<uint32_t>(r->decimation_));
  h.set_writer(std::string(kPluginName) + " (MuJoCo " + mj_versionString() + ")");
  for (int j = 0; j < m->njnt; ++j) h.add_joint_names(name_of(m, mjOBJ_JOINT, j));
  for (const auto& f : r->fields_) {
    auto* field = h.add_fields();
    field->set_name(f.name);
    field->set_size(static_cast<uint32_t>(f.size));
    for (const auto& n : f.element_names) field->add_element_names(n);
    r->frame_size_ += static_cast<size_t>(f.size);
  }

  // Refuse now (at compile time) what would fail at the first write: an existing file of another
  // model or layout, or a path that is a directory where a file is expected.
  std::error_code ec;
  if (!r->directory_mode_) {
    if (fs::is_directory(r->path_, ec)) return fail(kAttrPath, "'" + r->path_ + "' is a directory");
    try {
      SharedWriter::CheckPath(r->path_, h);
    } catch (const std::exception& e) {
      return fail(kAttrPath, std::string("cannot append: ") + e.what());
    }
  }
  if (r->directory_mode_ && fs::exists(r->path_, ec) && !fs::is_directory(r->path_, ec)) {
    return fail(kAttrPath, "'" + r->path_ + "' exists and is not a directory (files must end in " +
                               trajectory::kFileSuffix + ")");
  }
  // The compiler instantiates plugins and takes one test step on a model whose signature is not
  // set yet (0). That mjData only validates the attributes: it records nothing.
  r->validation_only_ = m->signature == 0;
  r->snap_.assign(1 + m->nq + m->nv + m->na, 0.0);
  r->meta_.episode_id = g_next_episode_id++;
  return r;
}

Recorder::~Recorder() { Flush(); }

int Recorder::frames_in_episode() const {
  return frame_size_ ? static_cast<int>(episode_.data_size() / frame_size_) : 0;
}

void Recorder::Snapshot() {
  double* s = snap_.data();
  s[0] = d_->time;
  std::memcpy(s + 1, d_->qpos, sizeof(double) * m_->nq);
  std::memcpy(s + 1 + m_->nq, d_->qvel, sizeof(double) * m_->nv);
  if (m_->na) std::memcpy(s + 1 + m_->nq + m_->nv, d_->act, sizeof(double) * m_->na);
}

void Recorder::Reset() {
  Flush();
  meta_ = EpisodeMeta{};
  meta_.episode_id = g_next_episode_id++;
  Snapshot();
}

void Recorder::BeginEpisode(const EpisodeMeta& meta) {
  Flush();
  meta_ = meta;
  meta_.explicit_id = true;
  Snapshot();
}

void Recorder::EndEpisode() {
  Flush();
  meta_ = EpisodeMeta{};
  meta_.episode_id = g_next_episode_id++;
}

void Recorder::Compute(const mjModel* m, mjData* d) {
  Snapshot();
  for (int i = 0; i < m->nsensor; ++i) {
    if (m->sensor_type[i] == mjSENS_PLUGIN && m->sensor_plugin[i] == instance_) {
      d->sensordata[m->sensor_adr[i]] = frames_in_episode();
    }
  }
}

void Recorder::Advance(const mjModel* m, mjData* d) {
  using K = FieldSource::Kind;
  if (step_in_episode_ == 0) episode_start_time_ = snap_[0];
  if (step_in_episode_ % decimation_ == 0) {
    auto* data = episode_.mutable_data();
    const int base = data->size();
    data->Resize(base + static_cast<int>(frame_size_), 0.0f);
    float* out = data->mutable_data() + base;
    auto put = [&out](const double* src, int n) {
      for (int i = 0; i < n; ++i) *out++ = static_cast<float>(src[i]);
    };
    const double* s = snap_.data();
    for (const auto& f : fields_) {
      switch (f.kind) {
        case K::kTime:
          put(s, 1);
          break;
        case K::kQpos:
          put(s + 1, m->nq);
          break;
        case K::kQvel:
          put(s + 1 + m->nq, m->nv);
          break;
        case K::kAct:
          put(s + 1 + m->nq + m->nv, m->na);
          break;
        case K::kCtrl:
          put(d->ctrl, m->nu);
          break;
        case K::kQacc:
          put(d->qacc, m->nv);
          break;
        case K::kSensordata:
          put(d->sensordata, m->nsensordata);
          break;
        case K::kMocapPos:
          put(d->mocap_pos, 3 * m->nmocap);
          break;
        case K::kMocapQuat:
          put(d->mocap_quat, 4 * m->nmocap);
          break;
        case K::kSensor:
          put(d->sensordata + f.index, f.size);
          break;
        case K::kSite:
          put(d->site_xpos + 3 * f.index, 3);
          break;
      }
    }
  }
  ++step_in_episode_;
  Snapshot();  // s_{t+1}: the fallback start of the next frame when sensors are disabled
  if (episode_steps_ > 0 && step_in_episode_ >= episode_steps_) EndEpisode();
}

void Recorder::Flush() {
  const int n = frames_in_episode();
  step_in_episode_ = 0;
  if (n == 0 || validation_only_) {
    episode_.Clear();
    return;
  }
  trajectory::Episode& e = episode_;
  e.set_episode_id(meta_.episode_id);
  e.set_seed(meta_.seed);
  e.set_start_state_id(meta_.start_state_id);
  e.set_branch_id(meta_.branch_id);
  e.set_num_frames(static_cast<uint32_t>(n));
  e.set_start_time(episode_start_time_);
  struct ClearOnExit {
    trajectory::Episode& e;
    ~ClearOnExit() { e.Clear(); }
  } clear_on_exit{e};
  try {
    if (!writer_) {
      if (directory_mode_) {
        fs::create_directories(path_);
        const std::string shard =
            (fs::path(path_) / (sanitize(header_.model_name()) + "-" + std::to_string(::getpid()) +
                                "-" + std::to_string(g_next_shard++) + trajectory::kFileSuffix))
                .string();
        writer_ = std::make_shared<SharedWriter>(shard, header_, sync_);
      } else {
        writer_ = SharedWriter::ForPath(path_, header_, sync_);
      }
    }
    writer_->append(e);
    ++episodes_written_;
  } catch (const std::exception& ex) {
    ++episodes_lost_;
    if (!warned_write_) {
      warned_write_ = true;
      mju_warning("%s: cannot write episode %llu to '%s': %s", kPluginName,
                  static_cast<unsigned long long>(meta_.episode_id), path_.c_str(), ex.what());
    }
  }
}

}  // namespace ebm::recorder

namespace {

using ebm::recorder::Recorder;

Recorder* Get(const mjData* d, int instance) {
  return reinterpret_cast<Recorder*>(d->plugin_data[instance]);
}

// Calls fn on every ebm.recorder instance of d; returns how many.
template <typename Fn>
int ForEachRecorder(const mjModel* m, mjData* d, Fn fn) {
  int found = 0;
  for (int i = 0; i < m->nplugin; ++i) {
    const mjpPlugin* p = mjp_getPluginAtSlot(m->plugin[i]);
    if (p && std::strcmp(p->name, ebm::recorder::kPluginName) == 0 && d->plugin_data[i]) {
      fn(Get(d, i));
      ++found;
    }
  }
  return found;
}

}  // namespace

namespace ebm::recorder {

void RegisterPlugin() {
  mjpPlugin plugin;
  mjp_defaultPlugin(&plugin);
  plugin.name = kPluginName;
  plugin.capabilityflags |= mjPLUGIN_SENSOR;
  static const char* attributes[] = {kAttrPath, kAttrFields, kAttrDecimation, kAttrEpisodeSteps,
                                     kAttrFlush};
  plugin.nattribute = sizeof(attributes) / sizeof(attributes[0]);
  plugin.attributes = attributes;
  plugin.nstate = +[](const mjModel*, int) { return 0; };
  plugin.nsensordata = +[](const mjModel*, int, int) { return 1; };
  // Position stage: the snapshot of s_t needs no derived quantity, and this stage adds no work
  // (the acceleration stage would force mj_rnePostConstraint on every step).
  plugin.needstage = mjSTAGE_POS;
  plugin.init = +[](const mjModel* m, mjData* d, int instance) {
    std::unique_ptr<Recorder> r = Recorder::Create(m, d, instance);
    if (!r) return -1;
    d->plugin_data[instance] = reinterpret_cast<uintptr_t>(r.release());
    return 0;
  };
  plugin.destroy = +[](mjData* d, int instance) {
    delete Get(d, instance);
    d->plugin_data[instance] = 0;
  };
  plugin.reset = +[](const mjModel*, mjtNum*, void* data, int) {
    if (data) static_cast<Recorder*>(data)->Reset();
  };
  plugin.compute = +[](const mjModel* m, mjData* d, int instance, int) {
    if (auto* r = Get(d, instance)) r->Compute(m, d);
  };
  plugin.advance = +[](const mjModel* m, mjData* d, int instance) {
    if (auto* r = Get(d, instance)) r->Advance(m, d);
  };
  mjp_registerPlugin(&plugin);
}

}  // namespace ebm::recorder

extern "C" {

int ebm_recorder_begin_episode(const mjModel* m, mjData* d, uint64_t episode_id, uint64_t seed,
                               uint32_t start_state_id, uint32_t branch_id) {
  ebm::recorder::EpisodeMeta meta;
  meta.episode_id = episode_id;
  meta.seed = seed;
  meta.start_state_id = start_state_id;
  meta.branch_id = branch_id;
  return ForEachRecorder(m, d, [&](Recorder* r) { r->BeginEpisode(meta); });
}

int ebm_recorder_end_episode(const mjModel* m, mjData* d) {
  return ForEachRecorder(m, d, [](Recorder* r) { r->EndEpisode(); });
}

uint64_t ebm_recorder_episodes_written(const mjModel* m, mjData* d, uint64_t* lost) {
  uint64_t written = 0, lost_sum = 0;
  ForEachRecorder(m, d, [&](Recorder* r) {
    written += r->episodes_written();
    lost_sum += r->episodes_lost();
  });
  if (lost) *lost = lost_sum;
  return written;
}

}  // extern "C"
