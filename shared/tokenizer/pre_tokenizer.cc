#include "shared/tokenizer/pre_tokenizer.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "shared/common/status_macros.h"
#include "shared/tokenizer/char_class.h"
#include "shared/tokenizer/utf8.h"

namespace blockserve::tokenizer {
namespace {

absl::StatusOr<bool> OptionalBool(const nlohmann::json& config,
                                  const char* field, bool default_value) {
  if (!config.contains(field) || config[field].is_null()) return default_value;
  if (!config[field].is_boolean()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pre_tokenizer field \"", field, "\" must be a bool"));
  }
  return config[field].get<bool>();
}

}  // namespace

absl::StatusOr<PreTokenizer> PreTokenizer::FromJson(
    const nlohmann::json& config) {
  if (config.is_null()) {
    return absl::UnimplementedError(
        "pre_tokenizer null is not supported: a byte-level BPE tokenizer needs "
        "a ByteLevel pre-tokenizer");
  }
  std::vector<nlohmann::json> configs;
  if (config.is_object() && config.value("type", "") == "Sequence") {
    if (!config.contains("pretokenizers") ||
        !config["pretokenizers"].is_array()) {
      return absl::InvalidArgumentError(
          "pre_tokenizer Sequence needs a \"pretokenizers\" array");
    }
    for (const nlohmann::json& inner : config["pretokenizers"]) {
      configs.push_back(inner);
    }
  } else {
    configs.push_back(config);
  }

  PreTokenizer pre_tokenizer;
  for (const nlohmann::json& step_config : configs) {
    if (!step_config.is_object() || !step_config.contains("type") ||
        !step_config["type"].is_string()) {
      return absl::InvalidArgumentError(
          "each pre_tokenizer must be an object with a string \"type\"");
    }
    const std::string type = step_config["type"].get<std::string>();
    Step step;
    if (type == "ByteLevel") {
      step.type = Step::Type::kByteLevel;
      ASSIGN_OR_RETURN(step.add_prefix_space,
                       OptionalBool(step_config, "add_prefix_space", true));
      ASSIGN_OR_RETURN(step.use_regex,
                       OptionalBool(step_config, "use_regex", true));
    } else if (type == "Split") {
      step.type = Step::Type::kSplit;
      const nlohmann::json pattern =
          step_config.value("pattern", nlohmann::json());
      if (!pattern.is_object() || !pattern.contains("Regex") ||
          !pattern["Regex"].is_string()) {
        return absl::UnimplementedError(absl::StrCat(
            "Split pre-tokenizer pattern ", pattern.dump(),
            " is not supported (only {\"Regex\": ...} with a known regex)"));
      }
      const std::string regex = pattern["Regex"].get<std::string>();
      const std::optional<SplitPattern> known = SplitPattern::FromRegex(regex);
      if (!known.has_value()) {
        return absl::UnimplementedError(absl::StrCat(
            "Split pre-tokenizer regex \"", regex,
            "\" is not supported (supported: the GPT-2, cl100k/Llama-3 and "
            "Qwen2 patterns)"));
      }
      step.pattern = *known;
      const std::string behavior = step_config.value("behavior", "");
      if (behavior != "Isolated") {
        return absl::UnimplementedError(
            absl::StrCat("Split pre-tokenizer behavior \"", behavior,
                         "\" is not supported (only \"Isolated\")"));
      }
      ASSIGN_OR_RETURN(const bool invert,
                       OptionalBool(step_config, "invert", false));
      if (invert) {
        return absl::UnimplementedError(
            "Split pre-tokenizer with invert: true is not supported");
      }
    } else if (type == "Digits") {
      step.type = Step::Type::kDigits;
      ASSIGN_OR_RETURN(step.individual_digits,
                       OptionalBool(step_config, "individual_digits", false));
    } else {
      return absl::UnimplementedError(
          absl::StrCat("pre_tokenizer type \"", type,
                       "\" is not supported (supported: ByteLevel, Split, "
                       "Digits, Sequence)"));
    }
    pre_tokenizer.steps_.push_back(step);
  }
  for (size_t i = 0; i < pre_tokenizer.steps_.size(); ++i) {
    const bool is_byte_level =
        pre_tokenizer.steps_[i].type == Step::Type::kByteLevel;
    const bool is_last = i + 1 == pre_tokenizer.steps_.size();
    if (is_byte_level != is_last) {
      return absl::UnimplementedError(absl::StrCat(
          "pre_tokenizer ", pre_tokenizer.Describe(),
          " is not supported: exactly one ByteLevel, as the last step, is "
          "required"));
    }
  }
  if (pre_tokenizer.steps_.empty()) {
    return absl::UnimplementedError(
        "an empty pre_tokenizer Sequence is not supported: a byte-level BPE "
        "tokenizer needs a ByteLevel pre-tokenizer");
  }
  return pre_tokenizer;
}

void PreTokenizer::Run(absl::string_view piece,
                       absl::FunctionRef<void(absl::string_view)> emit) const {
  RunFrom(0, piece, emit);
}

void PreTokenizer::RunFrom(
    size_t index, absl::string_view piece,
    absl::FunctionRef<void(absl::string_view)> emit) const {
  if (piece.empty()) return;  // Hugging Face drops empty splits.
  const Step& step = steps_[index];
  const bool last = index + 1 == steps_.size();
  auto next = [&](absl::string_view word) {
    if (last) {
      if (!word.empty()) emit(word);
    } else {
      RunFrom(index + 1, word, emit);
    }
  };
  switch (step.type) {
    case Step::Type::kSplit:
      step.pattern.Split(piece, next);
      return;
    case Step::Type::kDigits: {
      size_t pos = 0;
      size_t run_start = 0;
      bool run_is_digits = false;
      while (pos < piece.size()) {
        const Utf8Step c = DecodeUtf8(piece, pos);
        const bool digit = ClassifyChar(c.code_point) == CharClass::kNumber;
        if (pos > run_start &&
            (digit != run_is_digits || (digit && step.individual_digits))) {
          next(piece.substr(run_start, pos - run_start));
          run_start = pos;
        }
        run_is_digits = digit;
        pos += c.length;
      }
      next(piece.substr(run_start));
      return;
    }
    case Step::Type::kByteLevel: {
      std::string prefixed;
      if (step.add_prefix_space && piece[0] != ' ') {
        prefixed.reserve(piece.size() + 1);
        prefixed.push_back(' ');
        prefixed.append(piece.data(), piece.size());
        piece = prefixed;
      }
      if (step.use_regex) {
        SplitPattern(SplitPattern::Kind::kGpt2).Split(piece, next);
      } else {
        next(piece);
      }
      return;
    }
  }
}

std::string PreTokenizer::Describe() const {
  std::vector<std::string> names;
  for (const Step& step : steps_) {
    switch (step.type) {
      case Step::Type::kSplit:
        names.push_back(absl::StrCat("Split(", step.pattern.name(), ")"));
        break;
      case Step::Type::kDigits:
        names.push_back(step.individual_digits ? "Digits(individual)"
                                               : "Digits");
        break;
      case Step::Type::kByteLevel:
        names.push_back(absl::StrCat(
            "ByteLevel(", step.use_regex ? "gpt2" : "no regex",
            step.add_prefix_space ? ", add_prefix_space" : "", ")"));
        break;
    }
  }
  if (names.size() == 1) return names[0];
  return absl::StrCat("Sequence[", absl::StrJoin(names, ", "), "]");
}

}  // namespace blockserve::tokenizer
