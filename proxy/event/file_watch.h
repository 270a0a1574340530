// Files watched for changes on a loop (uv_fs_poll, once a second): certificates, keys, JWKS.
// `on_change(path)` runs on the loop after a file's size, times or inode changed. The watch
// does not keep the loop alive. Loop thread only.
#ifndef SLUICE_PROXY_EVENT_FILE_WATCH_H_
#define SLUICE_PROXY_EVENT_FILE_WATCH_H_

#include <uv.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace sluice {

class FileWatch {
 public:
  using OnChange = std::function<void(const std::string& path)>;

  FileWatch(uv_loop_t* loop, OnChange on_change) : loop_(loop), on_change_(std::move(on_change)) {}
  FileWatch(const FileWatch&) = delete;
  FileWatch& operator=(const FileWatch&) = delete;
  ~FileWatch() { Close(); }

  // Watches exactly `paths` from now on: new ones start, ones no longer listed stop.
  void Watch(const std::vector<std::string>& paths);
  // Stops every watch; the handles free themselves in their close callbacks.
  void Close();
  size_t size() const { return polls_.size(); }

 private:
  struct Poll;
  static void Stop(Poll* poll);

  uv_loop_t* loop_;
  OnChange on_change_;
  std::map<std::string, Poll*> polls_;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_EVENT_FILE_WATCH_H_
