#include "common/secret_file.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

TEST(SecretFileTest, GuessableSecrets) {
  EXPECT_TRUE(LooksGuessable(std::string(64, 'k')));
  EXPECT_TRUE(LooksGuessable("abababababababababababababababab"));
  EXPECT_TRUE(LooksGuessable("passwordpasswordpassword"));  // p a s w o r d: 7 letters
  EXPECT_TRUE(LooksGuessable(""));
  EXPECT_FALSE(LooksGuessable("3f9c1a7e5b2d4f6081a3c5e7092b4d6f"));  // openssl rand -hex 16
  EXPECT_FALSE(LooksGuessable("correct horse battery staple"));
}

}  // namespace
}  // namespace sluice
