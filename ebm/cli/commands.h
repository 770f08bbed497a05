// Subcommands of the `ebm` command. Each adds itself to the CLI11 app and, when chosen on the
// command line, its callback sets `action`, which main() runs inside one error handler.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace ebm::cli {

using Action = std::function<int()>;

void add_smoke(CLI::App& app, Action& action);
void add_train(CLI::App& app, Action& action);
void add_sample(CLI::App& app, Action& action);
void add_record(CLI::App& app, Action& action);
void add_data(CLI::App& app, Action& action);
void add_traj(CLI::App& app, Action& action);
void add_eval(CLI::App& app, Action& action);
void add_export(CLI::App& app, Action& action);

}  // namespace ebm::cli
