#include "proxy/event/signal_set.h"

#include <pthread.h>

#include <csignal>

namespace sluice {

struct SignalSet::Handle {
  uv_signal_t signal;
  std::function<void()> handler;
};

void SignalSet::On(int signum, std::function<void()> handler) {
  auto* h = new Handle{{}, std::move(handler)};
  uv_signal_init(loop_, &h->signal);
  h->signal.data = h;
  uv_signal_start(
      &h->signal, [](uv_signal_t* s, int) { static_cast<Handle*>(s->data)->handler(); }, signum);
  handles_.push_back(h);
}

void SignalSet::Close() {
  for (Handle* h : handles_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&h->signal),
             [](uv_handle_t* handle) { delete static_cast<Handle*>(handle->data); });
  }
  handles_.clear();
}

namespace {

sigset_t ControlSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int signum : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) sigaddset(&set, signum);
  return set;
}

}  // namespace

void SignalSet::HoldControlSignals() {
  sigset_t set = ControlSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void SignalSet::ReleaseControlSignals() {
  sigset_t set = ControlSignals();
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

}  // namespace sluice
