// Writes a TensorBoard event file with known content into argv[1], for
// tensorboard_reader_test.py (TensorBoard's own reader must read it back).
#include <torch/torch.h>

#include <cmath>
#include <iostream>

#include "ebm/report/tensorboard.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: tb_fixture DIR\n";
    return 2;
  }
  ebm::report::EventWriter w(argv[1]);
  for (int step = 0; step < 5; ++step) {
    w.add_scalar("train/loss", 0.5 * step, step);
    w.add_scalar("train/e_pos", -1.0 - step, step);
  }
  // 4 grey images of 3x5 in a grid of 2x2 with 2-pixel padding: 2 + 2 * (3 + 2) = 12 rows high,
  // 2 + 2 * (5 + 2) = 16 columns wide.
  w.add_image("samples/buffer", torch::rand({4, 1, 3, 5}), 7);
  // A histogram of known values (the NaN is left out) in 5 buckets, and one of a constant.
  w.add_histogram("energies/pos", torch::tensor({0.0, 0.0, 0.0, 1.0, 5.0, 9.0, std::nan("")}), 3,
                  5);
  w.add_histogram("energies/neg", torch::full({4}, 2.5), 3);
  w.flush();
  std::cout << w.path() << "\n";
  return 0;
}
