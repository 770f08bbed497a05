#include "ebm/report/plot.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ebm::report {

std::array<float, 3> palette(int64_t i) {
  static const std::array<std::array<float, 3>, 8> kPalette = {{{0.85f, 0.1f, 0.1f},
                                                                {0.1f, 0.45f, 0.85f},
                                                                {0.1f, 0.65f, 0.2f},
                                                                {0.8f, 0.5f, 0.0f},
                                                                {0.55f, 0.2f, 0.7f},
                                                                {0.0f, 0.6f, 0.6f},
                                                                {0.6f, 0.4f, 0.2f},
                                                                {0.3f, 0.3f, 0.3f}}};
  return kPalette[static_cast<size_t>(i) % kPalette.size()];
}

void draw_polyline(torch::Tensor& image, const torch::Tensor& xy,
                   const std::array<float, 3>& color) {
  if (image.dim() != 3 || image.size(0) != 3 || image.scalar_type() != torch::kFloat32)
    throw std::invalid_argument("draw_polyline: expected a float RGB image [3, H, W]");
  const int64_t height = image.size(1), width = image.size(2);
  auto a = image.accessor<float, 3>();
  auto p = xy.to(torch::kFloat64).contiguous();
  const double* v = p.data_ptr<double>();
  auto plot = [&](double x, double y) {
    const auto ix = static_cast<int64_t>(std::lround(x));
    const auto iy = height - 1 - static_cast<int64_t>(std::lround(y));
    if (ix < 0 || iy < 0 || ix >= width || iy >= height) return;
    for (int ch = 0; ch < 3; ++ch) a[ch][iy][ix] = color[ch];
  };
  if (p.size(0) == 1) plot(v[0], v[1]);
  for (int64_t t = 0; t + 1 < p.size(0); ++t) {
    const double xa = v[2 * t], ya = v[2 * t + 1], xb = v[2 * t + 2], yb = v[2 * t + 3];
    if (!std::isfinite(xa) || !std::isfinite(ya) || !std::isfinite(xb) || !std::isfinite(yb))
      continue;
    const int steps =
        static_cast<int>(std::min(1e5, std::max(std::abs(xb - xa), std::abs(yb - ya)))) + 1;
    for (int s = 0; s <= steps; ++s) {
      const double u = static_cast<double>(s) / steps;
      plot(xa + u * (xb - xa), ya + u * (yb - ya));
    }
  }
}

torch::Tensor line_chart(const std::vector<Series>& series, double y_min, double y_max,
                         int64_t width, int64_t height) {
  if (!(y_max > y_min)) throw std::invalid_argument("line_chart: y_max must exceed y_min");
  auto img = torch::ones({3, height, width});
  const double margin = 12;
  double x_min = 1e300, x_max = -1e300;
  for (const auto& s : series) {
    if (s.x.size() != s.y.size())
      throw std::invalid_argument("line_chart: series '" + s.name +
                                  "' has x/y of different lengths");
    for (double x : s.x) x_min = std::min(x_min, x), x_max = std::max(x_max, x);
  }
  if (!(x_max > x_min)) x_max = x_min + 1;
  const double w = width - 1 - 2 * margin, h = height - 1 - 2 * margin;
  const std::array<float, 3> grey{0.6f, 0.6f, 0.6f};
  auto box = torch::tensor({margin, margin, margin + w, margin, margin + w, margin + h, margin,
                            margin + h, margin, margin},
                           torch::kFloat64)
                 .reshape({5, 2});
  draw_polyline(img, box, grey);
  for (int k = 1; k < 4; ++k) {  // light horizontal grid at quarters of the y range
    const double y = margin + h * k / 4.0;
    draw_polyline(img, torch::tensor({margin, y, margin + w, y}, torch::kFloat64).reshape({2, 2}),
                  {0.9f, 0.9f, 0.9f});
  }
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    auto xy = torch::empty({static_cast<int64_t>(s.x.size()), 2}, torch::kFloat64);
    for (size_t t = 0; t < s.x.size(); ++t) {
      xy[t][0] = margin + (s.x[t] - x_min) / (x_max - x_min) * w;
      xy[t][1] = margin + (std::clamp(s.y[t], y_min, y_max) - y_min) / (y_max - y_min) * h;
    }
    const auto colour = palette(static_cast<int64_t>(i));
    draw_polyline(img, xy, colour);
    for (int64_t t = 0; t < xy.size(0); ++t) {
      const double cx = xy[t][0].item<double>(), cy = xy[t][1].item<double>();
      for (int d = -2; d <= 2; ++d)
        draw_polyline(
            img, torch::tensor({cx - 2, cy + d, cx + 2, cy + d}, torch::kFloat64).reshape({2, 2}),
            colour);
    }
  }
  return img;
}

torch::Tensor heat_map(const torch::Tensor& values) {
  auto v = values.to(torch::kFloat32);
  const float lo = v.min().item<float>(), hi = v.max().item<float>();
  auto u = (v - lo) / std::max(hi - lo, 1e-12f);  // 0..1
  // Dark blue -> teal -> yellow.
  auto r = (u * 1.6f - 0.6f).clamp(0, 1);
  auto g = (u * 0.9f + 0.05f).clamp(0, 1);
  auto b = (0.55f - u * 0.5f).clamp(0, 1);
  return torch::stack({r, g, b});
}

}  // namespace ebm::report
