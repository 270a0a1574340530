#include "proxy/event/file_watch.h"

#include <algorithm>

namespace sluice {

struct FileWatch::Poll {
  FileWatch* watch;
  std::string path;
  uv_fs_poll_t handle;
};

void FileWatch::Stop(Poll* poll) {
  uv_close(reinterpret_cast<uv_handle_t*>(&poll->handle),
           [](uv_handle_t* h) { delete static_cast<Poll*>(h->data); });
}

void FileWatch::Watch(const std::vector<std::string>& paths) {
  for (auto it = polls_.begin(); it != polls_.end();) {
    if (std::find(paths.begin(), paths.end(), it->first) == paths.end()) {
      Stop(it->second);
      it = polls_.erase(it);
    } else {
      ++it;
    }
  }
  for (const std::string& path : paths) {
    if (polls_.count(path)) continue;
    auto* poll = new Poll{this, path, {}};
    uv_fs_poll_init(loop_, &poll->handle);
    poll->handle.data = poll;
    uv_fs_poll_start(
        &poll->handle,
        [](uv_fs_poll_t* h, int status, const uv_stat_t*, const uv_stat_t*) {
          auto* p = static_cast<Poll*>(h->data);
          if (status == 0) p->watch->on_change_(p->path);
        },
        path.c_str(), 1000);
    uv_unref(reinterpret_cast<uv_handle_t*>(&poll->handle));
    polls_[path] = poll;
  }
}

void FileWatch::Close() {
  for (auto& [path, poll] : polls_) Stop(poll);
  polls_.clear();
}

}  // namespace sluice
