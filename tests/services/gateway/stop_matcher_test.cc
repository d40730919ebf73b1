// StopMatcher: stop sequences across pieces, hold-back of possible starts.
#include "services/gateway/stop_matcher.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace blockserve::services {
namespace {

// Feeds `pieces` and returns everything emitted plus whether it stopped.
std::pair<std::string, bool> FeedAll(StopMatcher& matcher, const std::vector<std::string>& pieces) {
  std::string out;
  for (const std::string& piece : pieces) {
    StopMatcher::Result r = matcher.Push(piece);
    out += r.text;
    if (r.matched) return {out, true};
  }
  return {out + matcher.Flush(), false};
}

TEST(StopMatcherTest, NoStopSequencesPassesTextThrough) {
  StopMatcher matcher({});
  StopMatcher::Result r = matcher.Push("hello");
  EXPECT_EQ(r.text, "hello");
  EXPECT_FALSE(r.matched);
}

TEST(StopMatcherTest, MatchInsideOnePieceCutsBeforeIt) {
  StopMatcher matcher({"END"});
  StopMatcher::Result r = matcher.Push("abcENDdef");
  EXPECT_TRUE(r.matched);
  EXPECT_EQ(r.text, "abc");
  EXPECT_TRUE(matcher.done());
  EXPECT_EQ(matcher.Push("more").text, "");
}

TEST(StopMatcherTest, MatchSpanningPiecesIsFoundAndNothingOfItLeaks) {
  StopMatcher matcher({"\n\n"});
  StopMatcher::Result a = matcher.Push("line one\n");
  EXPECT_EQ(a.text, "line one");  // the newline might start the stop
  EXPECT_EQ(matcher.held_bytes(), 1u);
  StopMatcher::Result b = matcher.Push("\nline two");
  EXPECT_TRUE(b.matched);
  EXPECT_EQ(b.text, "");
}

TEST(StopMatcherTest, HeldTextIsReleasedWhenItCannotStartAMatch) {
  StopMatcher matcher({"STOP"});
  EXPECT_EQ(matcher.Push("xxST").text, "xx");
  EXPECT_EQ(matcher.Push("A").text, "STA");
  EXPECT_EQ(matcher.held_bytes(), 0u);
}

TEST(StopMatcherTest, ManyPiecesOneCharacterEach) {
  StopMatcher matcher({"cat", "dog"});
  std::vector<std::string> pieces;
  for (char c : std::string("the hot dog ran")) pieces.push_back(std::string(1, c));
  auto [text, stopped] = FeedAll(matcher, pieces);
  EXPECT_TRUE(stopped);
  EXPECT_EQ(text, "the hot ");
}

TEST(StopMatcherTest, EarliestMatchWinsAmongSeveralSequences) {
  StopMatcher matcher({"world", "o w"});
  StopMatcher::Result r = matcher.Push("hello world");
  EXPECT_TRUE(r.matched);
  EXPECT_EQ(r.text, "hell");
  EXPECT_EQ(matcher.sequence(r.which), "o w");
}

TEST(StopMatcherTest, FlushReturnsHeldTextWhenTheGenerationEnds) {
  StopMatcher matcher({"abc"});
  EXPECT_EQ(matcher.Push("xab").text, "x");
  EXPECT_EQ(matcher.Flush(), "ab");
}

TEST(StopMatcherTest, MultibyteStopSequencesHoldWholeCharacters) {
  StopMatcher matcher({"\xC3\xA9t\xC3\xA9"});  // "été"
  StopMatcher::Result a = matcher.Push("caf\xC3\xA9");
  EXPECT_EQ(a.text, "caf");  // "é" may start "été"
  StopMatcher::Result b = matcher.Push("!");
  EXPECT_EQ(b.text, "\xC3\xA9!");
}

TEST(StopMatcherTest, EmptyStopSequencesAreIgnored) {
  StopMatcher matcher({""});
  EXPECT_EQ(matcher.Push("abc").text, "abc");
}

}  // namespace
}  // namespace blockserve::services
