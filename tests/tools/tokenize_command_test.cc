// Tests of `blockserve tokenize`: runs the built tool with standard input
// from a temporary file and checks its output against the reference
// tokenizations in tests/data/tokenizers (produced by Hugging Face
// `tokenizers`).
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace blockserve {
namespace {

using ::testing::HasSubstr;

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/bs_tokenize_" +
         std::to_string(getpid()) + "_" + name;
}

// Runs `blockserve tokenize ARGS` with `input` on standard input.
RunResult RunTokenize(const std::vector<std::string>& args,
                      const std::string& input) {
  const std::string in_path = TempPath("in");
  const std::string out_path = TempPath("out");
  const std::string err_path = TempPath("err");
  {
    std::ofstream in(in_path, std::ios::binary);
    in << input;
  }
  std::vector<std::string> argv_storage = {BLOCKSERVE_BIN, "tokenize"};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  RunResult result;
  pid_t pid;
  const int spawned = posix_spawn(&pid, BLOCKSERVE_BIN, &actions, nullptr,
                                  argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(spawned, 0) << "cannot run " << BLOCKSERVE_BIN;
  if (spawned == 0) {
    int status = 0;
    waitpid(pid, &status, 0);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  result.out = ReadAll(out_path);
  result.err = ReadAll(err_path);
  std::remove(in_path.c_str());
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  return result;
}

std::string Tokenizer(const std::string& name) {
  return std::string(BLOCKSERVE_TEST_DATA_DIR) + "/tokenizers/" + name +
         "/tokenizer.json";
}

TEST(TokenizeCommandTest, EncodesAllOfStandardInput) {
  // Reference ids: "Hello world" = 15496 995 and "\n" = 198 (GPT-2 cases).
  RunResult result =
      RunTokenize({"--tokenizer", Tokenizer("gpt2")}, "Hello world\n");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "15496 995 198\n");

  result = RunTokenize({"--tokenizer", Tokenizer("gpt-neox-20b")},
                       "    Hello\n    Hello");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "50274 12092 187 50274 12092\n");

  result = RunTokenize({"--tokenizer", Tokenizer("gpt2")}, "");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "\n");
}

TEST(TokenizeCommandTest, InvalidUtf8InputIsEncodedWithReplacements) {
  const RunResult bad = RunTokenize({"--tokenizer", Tokenizer("gpt2")},
                                    "a\xFF"
                                    "b");
  const RunResult replaced = RunTokenize({"--tokenizer", Tokenizer("gpt2")},
                                         "a\xEF\xBF\xBD"
                                         "b");
  EXPECT_EQ(bad.exit_code, 0) << bad.err;
  EXPECT_EQ(bad.out, replaced.out);
}

TEST(TokenizeCommandTest, DecodesIdsToExactText) {
  // " Hello World!" = 18435 2159 0 in the GPT-2 reference cases.
  RunResult result = RunTokenize({"--tokenizer", Tokenizer("gpt2"), "--decode"},
                                 "18435 2159 0\n");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, " Hello World!");

  result = RunTokenize({"--tokenizer", Tokenizer("gpt2"), "--decode"},
                       "18435,2159\n50256");
  EXPECT_EQ(result.out, " Hello World<|endoftext|>");
  result = RunTokenize(
      {"--tokenizer", Tokenizer("gpt2"), "--decode", "--skip-special-tokens"},
      "18435 2159 50256");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, " Hello World");
}

TEST(TokenizeCommandTest, ErrorsAndUsage) {
  RunResult result = RunTokenize(
      {"--tokenizer", Tokenizer("gpt-neox-20b"), "--decode"}, "12092 50300");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("50300"));

  result = RunTokenize({"--tokenizer", Tokenizer("gpt2"), "--decode"}, "12 x");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("'x'"));

  result = RunTokenize({"--tokenizer", "/nonexistent/tokenizer.json"}, "hi");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("/nonexistent/tokenizer.json"));

  result = RunTokenize({}, "hi");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("tokenizer"));

  result = RunTokenize({"--help"}, "");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_THAT(result.out, HasSubstr("--decode"));
}

}  // namespace
}  // namespace blockserve
