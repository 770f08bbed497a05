// Computes a sequence's items one ahead on a background thread: while the caller works on item i,
// item i + 1 is being made. The items and their order are exactly those of calling make(i) in
// turn; an exception thrown by make is rethrown by the next() that would have returned its item.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <stdexcept>
#include <utility>

namespace ebm::util {

template <typename T>
class Prefetcher {
 public:
  // Items make(first), make(first + 1), ..., make(end - 1). ahead = false makes each item when
  // next() asks for it (the same items, on the caller's thread).
  Prefetcher(std::function<T(int64_t)> make, int64_t first, int64_t end, bool ahead = true)
      : make_(std::move(make)), next_(first), end_(end), ahead_(ahead) {
    launch();
  }
  ~Prefetcher() {
    if (pending_.valid()) pending_.wait();
  }
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  bool done() const { return next_ >= end_; }

  // The next item (throws std::out_of_range past the end).
  T next() {
    if (done()) throw std::out_of_range("Prefetcher: no item left");
    T item = ahead_ ? pending_.get() : make_(next_);
    ++next_;
    launch();
    return item;
  }

 private:
  void launch() {
    // The task calls this object's make_ (not a copy of it), so a maker may keep state between
    // items; one task at most is in flight.
    if (ahead_ && !done())
      pending_ = std::async(std::launch::async, [this, i = next_] { return make_(i); });
  }

  std::function<T(int64_t)> make_;
  int64_t next_, end_;
  bool ahead_;
  std::future<T> pending_;
};

}  // namespace ebm::util
