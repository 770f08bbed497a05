#include "plugin/common/plugin_util.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

namespace ebm::plugin {

namespace {

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

}  // namespace

std::string Attributes::text(const char* key) const {
  const char* v = mj_getPluginConfig(m_, instance_, key);
  return v ? v : "";
}

std::optional<long> Attributes::integer(const char* key, long min, long max, long fallback) const {
  const std::string v = text(key);
  if (v.empty()) return fallback;
  char* end = nullptr;
  errno = 0;
  const long parsed = std::strtol(v.c_str(), &end, 10);
  if (errno != 0 || end == v.c_str() || *end != '\0' || parsed < min || parsed > max) {
    return fail(key, "must be an integer in " + std::to_string(min) + ".." + std::to_string(max) +
                         ", got '" + v + "'");
  }
  return parsed;
}

std::optional<std::vector<double>> Attributes::numbers(const char* key, size_t count, double min,
                                                       double max,
                                                       std::vector<double> fallback) const {
  const std::string v = text(key);
  if (v.empty()) return fallback;
  std::vector<double> out;
  const char* p = v.c_str();
  while (true) {
    while (*p == ' ' || *p == '\t' || *p == '\n') ++p;
    if (*p == '\0') break;
    char* end = nullptr;
    errno = 0;
    const double x = std::strtod(p, &end);
    if (errno != 0 || end == p || !std::isfinite(x) || x < min || x > max || out.size() == count) {
      out.clear();
      break;
    }
    out.push_back(x);
    p = end;
  }
  if (out.size() != count) {
    return fail(key, "must be " + std::to_string(count) + " numbers in [" + std::to_string(min) +
                         ", " + std::to_string(max) + "], got '" + v + "'");
  }
  return out;
}

std::nullopt_t Attributes::fail(const char* key, const std::string& what) const {
  warn_attribute(plugin_name_, key, what);
  return std::nullopt;
}

void warn_attribute(const char* plugin_name, const char* key, const std::string& what) {
  mju_warning("%s: attribute '%s': %s", plugin_name, key, what.c_str());
}

std::string name_of(const mjModel* m, int type, int id) {
  const char* n = mj_id2name(m, type, id);
  return n ? n : "";
}

namespace {

// The rows of a row-major array [n x stride] whose `keep` flag is set.
template <typename T>
std::vector<T> kept_rows(const T* data, int n, int stride, const std::vector<bool>& keep) {
  std::vector<T> out;
  for (int i = 0; i < n; ++i) {
    if (keep[i]) out.insert(out.end(), data + i * stride, data + (i + 1) * stride);
  }
  return out;
}

}  // namespace

uint64_t model_hash(const mjModel* m) {
  // Mocap bodies (targets and markers: no joints, no part of the state) are left out with their
  // geoms and sites, so that adding one at the end of a scene (a goal for ebm.generator to
  // follow) keeps its hash; a scene without them hashes as it always did.
  std::vector<bool> body(m->nbody), geom(m->ngeom), site(m->nsite);
  for (int i = 0; i < m->nbody; ++i) body[i] = m->body_mocapid[i] < 0;
  for (int i = 0; i < m->ngeom; ++i) geom[i] = body[m->geom_bodyid[i]];
  for (int i = 0; i < m->nsite; ++i) site[i] = body[m->site_bodyid[i]];
  const auto count = [](const std::vector<bool>& keep) {
    return static_cast<long>(std::count(keep.begin(), keep.end(), true));
  };
  uint64_t h = 1469598103934665603ull;
  // Sensors are left out: plugins (the recorder, the generator) add sensors of their own, and
  // the recorded frame layout already pins the sizes of recorded sensor data.
  const long sizes[] = {m->nq,       m->nv,       m->nu, m->na,  count(body), m->njnt,
                        count(geom), count(site), 0L,    m->neq, m->ntendon};
  hash_array(h, sizes, sizeof(sizes) / sizeof(sizes[0]));
  hash_array(h, &m->opt.timestep, 1);
  hash_array(h, m->jnt_type, m->njnt);
  hash_array(h, m->jnt_qposadr, m->njnt);
  hash_array(h, m->jnt_range, 2L * m->njnt);
  const auto parents = kept_rows(m->body_parentid, m->nbody, 1, body);
  hash_array(h, parents.data(), static_cast<long>(parents.size()));
  const auto masses = kept_rows(m->body_mass, m->nbody, 1, body);
  hash_array(h, masses.data(), static_cast<long>(masses.size()));
  const auto types = kept_rows(m->geom_type, m->ngeom, 1, geom);
  hash_array(h, types.data(), static_cast<long>(types.size()));
  const auto geom_sizes = kept_rows(m->geom_size, m->ngeom, 3, geom);
  hash_array(h, geom_sizes.data(), static_cast<long>(geom_sizes.size()));
  hash_array(h, m->actuator_ctrlrange, 2L * m->nu);
  hash_array(h, m->actuator_gainprm, static_cast<long>(mjNGAIN) * m->nu);
  hash_array(h, m->qpos0, m->nq);
  for (int type : {mjOBJ_BODY, mjOBJ_JOINT, mjOBJ_ACTUATOR, mjOBJ_SITE}) {
    const int n = type == mjOBJ_BODY       ? m->nbody
                  : type == mjOBJ_JOINT    ? m->njnt
                  : type == mjOBJ_ACTUATOR ? m->nu
                                           : m->nsite;
    for (int i = 0; i < n; ++i) {
      if ((type == mjOBJ_BODY && !body[i]) || (type == mjOBJ_SITE && !site[i])) continue;
      const std::string s = name_of(m, type, i);
      hash_bytes(h, s.c_str(), s.size() + 1);
    }
  }
  return h;
}

void fill_sensors(const mjModel* m, mjData* d, int instance, const mjtNum* values, int n) {
  for (int i = 0; i < m->nsensor; ++i) {
    if (m->sensor_type[i] == mjSENS_PLUGIN && m->sensor_plugin[i] == instance) {
      const int count = std::min(n, m->sensor_dim[i]);
      for (int k = 0; k < count; ++k) d->sensordata[m->sensor_adr[i] + k] = values[k];
    }
  }
}

std::vector<mjtNum> site_jacobian_qpos(const mjModel* m, mjData* d, int site) {
  mj_kinematics(m, d);
  mj_comPos(m, d);
  std::vector<mjtNum> jac_dof(3 * static_cast<size_t>(m->nv)), out(3 * static_cast<size_t>(m->nq));
  mj_jacSite(m, d, jac_dof.data(), nullptr, site);
  for (int j = 0; j < m->njnt; ++j) {
    const int type = m->jnt_type[j];
    const int coords = type == mjJNT_FREE ? 3 : type == mjJNT_HINGE || type == mjJNT_SLIDE ? 1 : 0;
    for (int c = 0; c < coords; ++c) {
      for (int r = 0; r < 3; ++r) {
        out[r * m->nq + m->jnt_qposadr[j] + c] = jac_dof[r * m->nv + m->jnt_dofadr[j] + c];
      }
    }
  }
  return out;
}

}  // namespace ebm::plugin
