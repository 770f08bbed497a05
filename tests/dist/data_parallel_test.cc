// Data-parallel training across real processes: two workers (dist_worker.cc) join a Gloo group on
// 127.0.0.1 the way torchrun starts them, train a few steps, and write their state after every
// step. Checked against one process that contrasts both ranks' batches with both ranks' samples
// (the data-parallel gradient is the mean of the ranks' gradients only if that equals it), and a
// rank killed mid-run must be named by the other within the documented timeout.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/dist/tiny_run.h"
#include "tests/support/temp_dir.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort() {
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

// Starts the worker as rank `rank` of `world` with the launcher's variables; stderr to `log`.
pid_t StartRank(int rank, int world, int port, const std::vector<std::string>& args,
                const std::string& log, const std::string& timeout_s = "60") {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  env.push_back("RANK=" + std::to_string(rank));
  env.push_back("LOCAL_RANK=" + std::to_string(rank));
  env.push_back("WORLD_SIZE=" + std::to_string(world));
  env.push_back("MASTER_ADDR=127.0.0.1");
  env.push_back("MASTER_PORT=" + std::to_string(port));
  env.push_back("GLOO_SOCKET_IFNAME=lo");
  env.push_back("EBM_DIST_TIMEOUT=" + timeout_s);
  std::vector<std::string> argv{EBM_DIST_WORKER};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t pid = fork();
  if (pid == 0) {
    freopen(log.c_str(), "w", stderr);
    std::vector<char*> a, e;
    for (auto& s : argv) a.push_back(s.data());
    for (auto& s : env) e.push_back(s.data());
    a.push_back(nullptr);
    e.push_back(nullptr);
    execve(a[0], a.data(), e.data());
    _exit(127);
  }
  return pid;
}

// The exit code of `pid`, or -1 when it has not exited within `limit` (it is then killed).
int WaitFor(pid_t pid, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct StepFile {
  std::vector<torch::Tensor> state;
  torch::Tensor pos, neg;
};

StepFile Load(const std::string& path) {
  torch::serialize::InputArchive a;
  a.load_from(path);
  StepFile f;
  a.read("pos", f.pos);
  a.read("neg", f.neg);
  torch::Tensor t;
  for (int i = 0; a.try_read("state." + std::to_string(i), t); ++i) f.state.push_back(t.clone());
  return f;
}

}  // namespace

TEST(DataParallel, TwoRanksStayIdenticalAndMatchOneProcessHoldingBothBatches) {
  const auto dir = ebm::testing::FreshTempDir("dist_two_ranks");
  const int port = FreePort();
  constexpr int kSteps = 4;
  const std::vector<std::string> args{"train", dir, std::to_string(kSteps)};
  const pid_t r0 = StartRank(0, 2, port, args, dir + "/rank0.log");
  const pid_t r1 = StartRank(1, 2, port, args, dir + "/rank1.log");
  ASSERT_EQ(WaitFor(r0, std::chrono::seconds(120)), 0) << Slurp(dir + "/rank0.log");
  ASSERT_EQ(WaitFor(r1, std::chrono::seconds(30)), 0) << Slurp(dir + "/rank1.log");

  // One process, seeded as rank 0 (whose initial state the group adopted), contrasting the union
  // of both ranks' batches with the union of both ranks' samples.
  torch::manual_seed(ebm::testing::kTinySeed);
  auto model = std::make_shared<ebm::testing::TinyEnergy>(ebm::testing::kTinyDim);
  ebm::ContrastiveDivergenceTrainer one(model, {ebm::testing::kTinyDim},
                                        ebm::testing::TinyTrainerOptions());
  for (int k = 1; k <= kSteps; ++k) {
    const auto a = Load(dir + "/rank0-step" + std::to_string(k) + ".pt");
    const auto b = Load(dir + "/rank1-step" + std::to_string(k) + ".pt");
    ASSERT_EQ(a.state.size(), b.state.size());
    // Parameters, spectral-norm vectors, EMA weights, Adam moments: bit-identical on both ranks.
    for (size_t i = 0; i < a.state.size(); ++i)
      ASSERT_TRUE(torch::equal(a.state[i], b.state[i])) << "state " << i << " after step " << k;
    // The ranks trained on different data and drew different samples.
    EXPECT_FALSE(torch::equal(a.pos, b.pos));
    EXPECT_FALSE(torch::equal(a.neg, b.neg));

    ebm::BufferDraw negatives;
    negatives.x = torch::cat({a.neg, b.neg});
    one.step_on(torch::cat({a.pos, b.pos}), negatives);
    const auto mine = one.replicated_state();
    ASSERT_EQ(mine.size(), a.state.size());
    for (size_t i = 0; i < mine.size(); ++i)
      EXPECT_TRUE(torch::allclose(mine[i], a.state[i], 1e-4, 1e-6))
          << "state " << i << " after step " << k << ": max difference "
          << (mine[i] - a.state[i]).abs().max().item<double>();
  }
}

// Two ranks training until stopped, started with collective timeout `timeout_s`; returns once
// rank 1 has written its third step.
struct LongRun {
  std::string dir;
  pid_t rank0 = 0, rank1 = 0;
};
LongRun StartLongRun(const std::string& name, const std::string& timeout_s) {
  LongRun run{ebm::testing::FreshTempDir(name)};
  const int port = FreePort();
  const std::vector<std::string> args{"train", run.dir, "100000", "100"};
  run.rank0 = StartRank(0, 2, port, args, run.dir + "/rank0.log", timeout_s);
  run.rank1 = StartRank(1, 2, port, args, run.dir + "/rank1.log", timeout_s);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(run.dir + "/rank1-step3.pt") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(fs::exists(run.dir + "/rank1-step3.pt")) << Slurp(run.dir + "/rank1.log");
  return run;
}

// Rank 0 must exit non-zero within `limit`, naming rank 1.
void ExpectRank0NamesRank1(const LongRun& run, std::chrono::seconds limit) {
  const int code = WaitFor(run.rank0, limit);
  const std::string log = Slurp(run.dir + "/rank0.log");
  EXPECT_NE(code, -1) << "rank 0 still ran after the documented timeout:\n" << log;
  EXPECT_NE(code, 0) << log;
  EXPECT_NE(log.find("rank 1 died or stopped responding"), std::string::npos) << log;
}

TEST(DataParallel, AKilledRankIsNamedByTheOtherWithinTheTimeout) {
  // Collective timeout 20 s (a dead rank is noticed at once: its sockets close), then up to 10 s
  // of roll call.
  const LongRun run = StartLongRun("dist_kill", "20");
  kill(run.rank1, SIGKILL);
  WaitFor(run.rank1, std::chrono::seconds(10));
  ExpectRank0NamesRank1(run, std::chrono::seconds(20 + 10 + 30));
}

TEST(DataParallel, AHungRankIsNamedAfterTheCollectiveTimeout) {
  // Rank 1 is stopped, not killed: its sockets stay open, so only the 5 s timeout can tell.
  const LongRun run = StartLongRun("dist_hang", "5");
  kill(run.rank1, SIGSTOP);
  ExpectRank0NamesRank1(run, std::chrono::seconds(5 + 10 + 30));
  kill(run.rank1, SIGKILL);
  WaitFor(run.rank1, std::chrono::seconds(10));
}
