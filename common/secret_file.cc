#include "common/secret_file.h"

#include <sys/stat.h>

#include <bitset>

#include "common/log.h"

namespace sluice {

void WarnIfOthersMayRead(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return;
  if ((st.st_mode & (S_IRGRP | S_IROTH)) == 0) return;
  LOG_WARN("%s holds a secret but its group or anyone may read it (mode %04o): chmod 600 %s", path,
           static_cast<unsigned>(st.st_mode & 07777), path);
}

bool LooksGuessable(std::string_view secret) {
  std::bitset<256> seen;
  for (char c : secret) seen.set(static_cast<unsigned char>(c));
  return seen.count() < 8;
}

}  // namespace sluice
