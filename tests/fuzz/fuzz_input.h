// Splits a fuzzer input into pieces whose sizes come from the input itself, so the fuzzer
// explores how a parser copes with data arriving in arbitrary reads.
#ifndef SLUICE_TESTS_FUZZ_FUZZ_INPUT_H_
#define SLUICE_TESTS_FUZZ_FUZZ_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  // The first byte chooses the read size (1..256, or everything when 0).
  template <typename Fn>
  void ForEachRead(Fn fn) const {
    if (size_ == 0) return;
    size_t step = data_[0];
    std::string_view rest(reinterpret_cast<const char*>(data_ + 1), size_ - 1);
    if (step == 0) step = rest.size() == 0 ? 1 : rest.size();
    while (!rest.empty()) {
      size_t n = step < rest.size() ? step : rest.size();
      if (!fn(rest.substr(0, n))) return;
      rest.remove_prefix(n);
    }
  }

 private:
  const uint8_t* data_;
  size_t size_;
};

}  // namespace sluice

#endif  // SLUICE_TESTS_FUZZ_FUZZ_INPUT_H_
