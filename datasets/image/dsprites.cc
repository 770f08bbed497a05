// dSprites: the official npz and a procedural generator of the same factors.
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "datasets/image/image_dataset.h"

namespace ebm::data {

namespace {

const std::vector<std::string> kShapeNames = {"square", "ellipse", "heart"};
const std::vector<std::string> kFactorNames = {"color",       "shape", "scale",
                                               "orientation", "pos_x", "pos_y"};

std::vector<double> linspace(double a, double b, int n) {
  std::vector<double> v(n);
  for (int i = 0; i < n; ++i) v[i] = n == 1 ? a : a + (b - a) * i / (n - 1);
  return v;
}

}  // namespace

void render_sprite(int shape, double scale, double orientation, double pos_x, double pos_y,
                   uint8_t* out) {
  // Centre within [8, 56] pixels so that every sprite stays (mostly) inside the 64x64 frame;
  // half-extent 10 px at scale 1.
  const double cx = 8.0 + 48.0 * pos_x, cy = 8.0 + 48.0 * pos_y, r = 10.0 * scale;
  const double c = std::cos(orientation), s = std::sin(orientation);
  for (int y = 0; y < 64; ++y) {
    for (int x = 0; x < 64; ++x) {
      const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
      const double u = (c * dx + s * dy) / r, v = (-s * dx + c * dy) / r;
      bool inside = false;
      if (shape == 0) {
        inside = std::abs(u) <= 1.0 && std::abs(v) <= 1.0;
      } else if (shape == 1) {
        inside = u * u + 4.0 * v * v <= 1.0;
      } else {
        const double hx = 1.2 * u, hy = -1.2 * v + 0.2;  // heart curve, point up
        const double q = hx * hx + hy * hy - 1.0;
        inside = q * q * q - hx * hx * hy * hy * hy <= 0.0;
      }
      out[y * 64 + x] = inside ? 255 : 0;
    }
  }
}

ImageDataset generate_dsprites(const DSpritesSpec& spec) {
  if (spec.count < 1) throw DatasetError("dsprites: count must be >= 1");
  if (spec.shapes.empty()) throw DatasetError("dsprites: at least one shape is needed");
  for (int s : spec.shapes) {
    if (s < 0 || s > 2)
      throw DatasetError("dsprites: shapes are 0 (square), 1 (ellipse), 2 (heart)");
  }
  std::vector<double> scales, positions;
  for (double v : linspace(0.5, 1.0, 6)) {
    if (v >= spec.scale_min - 1e-9 && v <= spec.scale_max + 1e-9) scales.push_back(v);
  }
  for (double v : linspace(0.0, 1.0, 32)) {
    if (v >= spec.pos_min - 1e-9 && v <= spec.pos_max + 1e-9) positions.push_back(v);
  }
  if (scales.empty() || positions.empty()) {
    throw DatasetError("dsprites: the scale or position range holds no value of the official grid");
  }
  const auto orientations = spec.rotate ? linspace(0.0, 2 * M_PI, 40) : std::vector<double>{0.0};
  std::mt19937_64 rng(spec.seed);
  auto pick = [&rng](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  ImageDataset ds;
  ds.images = torch::empty({spec.count, 1, 64, 64}, torch::kUInt8);
  ds.labels = torch::empty({spec.count}, torch::kLong);
  ds.factors = torch::empty({spec.count, 6}, torch::kFloat64);
  auto* ip = ds.images.data_ptr<uint8_t>();
  auto* lp = ds.labels.data_ptr<int64_t>();
  auto* fp = ds.factors.data_ptr<double>();
  for (int64_t i = 0; i < spec.count; ++i) {
    const int shape = spec.shapes[pick(spec.shapes.size())];
    const double sc = scales[pick(scales.size())], o = orientations[pick(orientations.size())];
    const double px = positions[pick(positions.size())], py = positions[pick(positions.size())];
    render_sprite(shape, sc, o, px, py, ip + i * 4096);
    lp[i] = shape;
    const double f[6] = {1.0, shape + 1.0, sc, o, px, py};
    std::memcpy(fp + i * 6, f, sizeof(f));
  }
  ds.class_names = kShapeNames;
  ds.factor_names = kFactorNames;
  ds.split = "procedural";
  ds.source = "procedural dSprites (seed " + std::to_string(spec.seed) + ")";
  return ds;
}

ImageDataset load_dsprites(const std::string& path) {
  ImageDataset ds;
  DSpritesLatents latents = read_dsprites_npz(path, into_tensor(ds.images));
  const auto n = static_cast<int64_t>(latents.shapes.size());
  ds.labels = torch::tensor(latents.shapes, torch::kLong);
  ds.factors = torch::from_blob(latents.values.data(), {n, 6}, torch::kFloat64).clone();
  ds.class_names = kShapeNames;
  ds.factor_names = kFactorNames;
  ds.split = "train";
  ds.source = path;
  return ds;
}

}  // namespace ebm::data
