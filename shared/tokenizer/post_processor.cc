#include "shared/tokenizer/post_processor.h"

#include "absl/strings/str_cat.h"
#include "shared/common/status_macros.h"

namespace blockserve::tokenizer {
namespace {

// ["<s>", 0] as RobertaProcessing and BertProcessing write their tokens.
absl::StatusOr<int32_t> TokenPairId(const nlohmann::json& config,
                                    const char* field,
                                    const std::string& type) {
  if (!config.contains(field) || !config[field].is_array() ||
      config[field].size() != 2 || !config[field][1].is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "post_processor ", type, " needs \"", field, "\": [token, id]"));
  }
  return config[field][1].get<int32_t>();
}

}  // namespace

absl::StatusOr<PostProcessor> PostProcessor::FromJson(
    const nlohmann::json& config) {
  PostProcessor processor;
  if (config.is_null()) return processor;
  if (!config.is_object() || !config.contains("type") ||
      !config["type"].is_string()) {
    return absl::InvalidArgumentError(
        "post_processor must be null or an object with a string \"type\"");
  }
  const std::string type = config["type"].get<std::string>();
  if (type == "ByteLevel") return processor;
  if (type == "Sequence") {
    if (!config.contains("processors") || !config["processors"].is_array()) {
      return absl::InvalidArgumentError(
          "post_processor Sequence needs a \"processors\" array");
    }
    for (const nlohmann::json& inner : config["processors"]) {
      ASSIGN_OR_RETURN(PostProcessor inner_processor, FromJson(inner));
      for (Template& t : inner_processor.templates_) {
        processor.templates_.push_back(std::move(t));
      }
    }
    return processor;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    ASSIGN_OR_RETURN(const int32_t cls, TokenPairId(config, "cls", type));
    ASSIGN_OR_RETURN(const int32_t sep, TokenPairId(config, "sep", type));
    processor.templates_.push_back({{cls}, {sep}});
    return processor;
  }
  if (type == "TemplateProcessing") {
    if (!config.contains("single") || !config["single"].is_array()) {
      return absl::InvalidArgumentError(
          "post_processor TemplateProcessing needs a \"single\" array");
    }
    const nlohmann::json specials =
        config.value("special_tokens", nlohmann::json::object());
    Template result;
    bool seen_sequence = false;
    for (const nlohmann::json& piece : config["single"]) {
      if (piece.is_object() && piece.contains("Sequence")) {
        const nlohmann::json& sequence = piece["Sequence"];
        if (sequence.value("id", "") != "A" || seen_sequence) {
          return absl::UnimplementedError(
              absl::StrCat("TemplateProcessing single piece ", piece.dump(),
                           " is not supported (only one $A)"));
        }
        seen_sequence = true;
      } else if (piece.is_object() && piece.contains("SpecialToken") &&
                 piece["SpecialToken"].contains("id") &&
                 piece["SpecialToken"]["id"].is_string()) {
        const std::string name = piece["SpecialToken"]["id"].get<std::string>();
        if (!specials.contains(name) || !specials[name].contains("ids") ||
            !specials[name]["ids"].is_array()) {
          return absl::InvalidArgumentError(
              absl::StrCat("TemplateProcessing names special token \"", name,
                           "\" that its special_tokens do not define"));
        }
        std::vector<int32_t>& target =
            seen_sequence ? result.after : result.before;
        for (const nlohmann::json& id : specials[name]["ids"]) {
          if (!id.is_number_integer()) {
            return absl::InvalidArgumentError(
                absl::StrCat("TemplateProcessing special token \"", name,
                             "\" has a non-integer id ", id.dump()));
          }
          target.push_back(id.get<int32_t>());
        }
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("TemplateProcessing single piece ", piece.dump(),
                         " is neither a Sequence nor a SpecialToken"));
      }
    }
    if (!seen_sequence) {
      return absl::InvalidArgumentError(
          "TemplateProcessing single template has no $A");
    }
    processor.templates_.push_back(std::move(result));
    return processor;
  }
  return absl::UnimplementedError(absl::StrCat(
      "post_processor type \"", type,
      "\" is not supported (supported: ByteLevel, TemplateProcessing, "
      "RobertaProcessing, BertProcessing, Sequence)"));
}

std::vector<int32_t> PostProcessor::Apply(std::vector<int32_t> ids) const {
  for (const Template& t : templates_) {
    std::vector<int32_t> out;
    out.reserve(t.before.size() + ids.size() + t.after.size());
    out.insert(out.end(), t.before.begin(), t.before.end());
    out.insert(out.end(), ids.begin(), ids.end());
    out.insert(out.end(), t.after.begin(), t.after.end());
    ids = std::move(out);
  }
  return ids;
}

std::vector<int32_t> PostProcessor::AddedIds() const {
  std::vector<int32_t> ids;
  for (const Template& t : templates_) {
    ids.insert(ids.end(), t.before.begin(), t.before.end());
    ids.insert(ids.end(), t.after.begin(), t.after.end());
  }
  return ids;
}

}  // namespace blockserve::tokenizer
