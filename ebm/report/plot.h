// Small raster plots written as PNG without any plotting library: polylines, line charts (for
// accuracy curves) and heat maps (for 2-D energies). Axis values are not drawn as text: the
// report beside every plot gives its axes, legend and numbers.
#pragma once

#include <torch/types.h>

#include <array>
#include <string>
#include <vector>

namespace ebm::report {

// The i-th colour (RGB in [0, 1]) of an 8-colour palette.
std::array<float, 3> palette(int64_t i);

// Draws a polyline of (x, y) pixel coordinates [T, 2] (y up, origin bottom-left) into a float RGB
// image [3, H, W]; parts outside the image are clipped.
void draw_polyline(torch::Tensor& image, const torch::Tensor& xy,
                   const std::array<float, 3>& color);

struct Series {
  std::string name;
  std::vector<double> x, y;
};

// A line chart [3, H, W] in [0, 1]: an axes box, every series in its palette colour (series i
// gets palette(i)) with a square marker at each point. The y range is [y_min, y_max].
torch::Tensor line_chart(const std::vector<Series>& series, double y_min, double y_max,
                         int64_t width = 360, int64_t height = 240);

// Maps values [H, W] to RGB [3, H, W] (dark blue = low, yellow = high), min-max scaled.
torch::Tensor heat_map(const torch::Tensor& values);

}  // namespace ebm::report
