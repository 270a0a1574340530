// The signing keys a worker's auth filters verify with, by JWKS file. The worker owns its
// slots (FilterEnvironment::key_slots); the control thread's file watch sends a new key set,
// and the worker installs it in the slot of that file. Worker thread only.
#ifndef SLUICE_FILTERS_AUTH_KEY_SLOTS_H_
#define SLUICE_FILTERS_AUTH_KEY_SLOTS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "filters/auth/jwks.h"

namespace sluice {

// The keys of one JWKS file as one worker sees them now; replaced when the file changes.
struct KeySlot {
  std::shared_ptr<const JsonWebKeySet> keys;
  uint64_t generation = 0;
  // Takes `next` unless the slot already holds a newer set (a file change and a reload can
  // reach a worker in either order).
  void Install(std::shared_ptr<const JsonWebKeySet> next) {
    if (!next || (keys && keys->version() >= next->version())) return;
    keys = std::move(next);
    ++generation;
  }
};

// A worker's key slots, by file path. Slots never move once created.
class KeySlots {
 public:
  KeySlot* Get(const std::string& path) {
    std::unique_ptr<KeySlot>& slot = slots_[path];
    if (!slot) slot = std::make_unique<KeySlot>();
    return slot.get();
  }

 private:
  std::map<std::string, std::unique_ptr<KeySlot>> slots_;
};

}  // namespace sluice

#endif  // SLUICE_FILTERS_AUTH_KEY_SLOTS_H_
