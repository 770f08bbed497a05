// The trajectory record reader (datasets/trajectory/record_file.h): indexing a file (frame heads,
// checksums, the header record, episode layouts), reading every episode back, its JSON summary.
// Only TrajectoryError may come out; anything else (a crash, a sanitizer report, another
// exception) is a finding.
#include <cstddef>
#include <cstdint>

#include "datasets/trajectory/record_file.h"
#include "memory_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ebm::fuzz::MemoryFile file(data, size);
  ebm::fuzz::without_descriptor_leaks([&] {
    try {
      const ebm::trajectory::TrajectoryCorpus corpus(file.path());
      for (size_t i = 0; i < corpus.size(); ++i) corpus.read(i);
      corpus.stats_json();
      ebm::trajectory::read_file_header(file.path());
    } catch (const ebm::trajectory::TrajectoryError&) {
    }
  });
  return 0;
}
