#include "proxy/http/path_normalizer.h"

#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace {

std::string Norm(std::string_view path, PathNormalizerOptions options = {}) {
  std::string out;
  const char* error = NormalizePath(path, options, &out);
  return error ? std::string("ERROR: ") + error : out;
}

TEST(PathNormalizerTest, LeavesCleanPathsAlone) {
  EXPECT_EQ(Norm("/"), "/");
  EXPECT_EQ(Norm("/a/b/c"), "/a/b/c");
  EXPECT_EQ(Norm("/a/b/"), "/a/b/");
  EXPECT_EQ(Norm("/a%20b"), "/a%20b");
}

TEST(PathNormalizerTest, RemovesDotSegments) {
  EXPECT_EQ(Norm("/a/./b"), "/a/b");
  EXPECT_EQ(Norm("/a/b/../c"), "/a/c");
  EXPECT_EQ(Norm("/a/.."), "/");
  EXPECT_EQ(Norm("/../../etc/passwd"), "/etc/passwd");
  EXPECT_EQ(Norm("/a/b/.."), "/a/");
  EXPECT_EQ(Norm("/."), "/");
  EXPECT_EQ(Norm("/a/.b/..c"), "/a/.b/..c");
}

TEST(PathNormalizerTest, DecodesUnreservedOnly) {
  EXPECT_EQ(Norm("/%61%62%7E"), "/ab~");
  EXPECT_EQ(Norm("/%2e%2E/admin"), "/admin");
  EXPECT_EQ(Norm("/api/%2e%2e/admin"), "/admin");
  EXPECT_EQ(Norm("/a%3fb"), "/a%3Fb");
  EXPECT_EQ(Norm("/%e2%82%ac"), "/%E2%82%AC");
}

TEST(PathNormalizerTest, MergesSlashesWhenConfigured) {
  EXPECT_EQ(Norm("//a///b//"), "/a/b/");
  PathNormalizerOptions keep;
  keep.merge_slashes = false;
  EXPECT_EQ(Norm("//a//b", keep), "//a//b");
}

TEST(PathNormalizerTest, Refusals) {
  EXPECT_EQ(Norm("/a%2Fb"), "ERROR: encoded slash in path");
  EXPECT_EQ(Norm("/a%5cb"), "ERROR: encoded slash in path");
  EXPECT_EQ(Norm("/a\\b"), "ERROR: backslash in path");
  EXPECT_EQ(Norm("/a%00"), "ERROR: encoded NUL in path");
  EXPECT_EQ(Norm("/a%zz"), "ERROR: invalid percent-encoding");
  EXPECT_EQ(Norm("/a%4"), "ERROR: truncated percent-encoding");
  EXPECT_EQ(Norm("a/b"), "ERROR: path must start with /");
  PathNormalizerOptions lax;
  lax.reject_encoded_slash = false;
  lax.reject_encoded_nul = false;
  EXPECT_EQ(Norm("/a%2fb%00", lax), "/a%2Fb%00");
}

TEST(PathNormalizerTest, DotSegmentsWithParametersAreRefused) {
  // Tomcat, Jetty and Spring read "..;x" as "..": /health/..;/admin is /admin to them.
  EXPECT_EQ(Norm("/health/..;/admin"), "ERROR: path parameter on a dot segment");
  EXPECT_EQ(Norm("/health/..;jsessionid=1/admin"), "ERROR: path parameter on a dot segment");
  EXPECT_EQ(Norm("/health/.;/admin"), "ERROR: path parameter on a dot segment");
  EXPECT_EQ(Norm("/health/%2e%2e;/admin"), "ERROR: path parameter on a dot segment");
  EXPECT_EQ(Norm("/health/%2E;x"), "ERROR: path parameter on a dot segment");
  // Parameters elsewhere, and dots that are not a whole segment, are the origin's business.
  EXPECT_EQ(Norm("/a;v=1/b"), "/a;v=1/b");
  EXPECT_EQ(Norm("/a/...;x"), "/a/...;x");
  EXPECT_EQ(Norm("/a/x..;/b"), "/a/x..;/b");
}

}  // namespace
}  // namespace sluice
