#include "shared/common/arg_parser.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace blockserve {
namespace {

absl::Status BadValue(absl::string_view name, absl::string_view value, absl::string_view want) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", name, ": expected ", want, ", got '", value, "'"));
}

}  // namespace

ArgParser::ArgParser(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

void ArgParser::Add(Option option) { options_.push_back(std::move(option)); }

ArgParser::Option* ArgParser::Find(absl::string_view name) {
  for (Option& option : options_) {
    if (option.name == name) return &option;
  }
  return nullptr;
}

bool ArgParser::WasSet(absl::string_view name) const {
  for (const Option& option : options_) {
    if (option.name == name) return option.seen;
  }
  return false;
}

void ArgParser::AddString(std::string name, std::string* target, std::string help,
                          bool required) {
  Option o{.name = name, .help = std::move(help), .value_hint = "STR", .required = required};
  o.default_text = target->empty() ? "" : "\"" + *target + "\"";
  o.assign = [target](absl::string_view v) {
    *target = std::string(v);
    return absl::OkStatus();
  };
  Add(std::move(o));
}

void ArgParser::AddInt(std::string name, int64_t* target, std::string help, bool required) {
  Option o{.name = name, .help = std::move(help), .value_hint = "N", .required = required};
  o.default_text = absl::StrCat(*target);
  o.assign = [target, name](absl::string_view v) {
    int64_t parsed;
    if (!absl::SimpleAtoi(v, &parsed)) return BadValue(name, v, "an integer");
    *target = parsed;
    return absl::OkStatus();
  };
  Add(std::move(o));
}

void ArgParser::AddInt(std::string name, int* target, std::string help, bool required) {
  Option o{.name = name, .help = std::move(help), .value_hint = "N", .required = required};
  o.default_text = absl::StrCat(*target);
  o.assign = [target, name](absl::string_view v) {
    int parsed;
    if (!absl::SimpleAtoi(v, &parsed)) return BadValue(name, v, "an integer");
    *target = parsed;
    return absl::OkStatus();
  };
  Add(std::move(o));
}

void ArgParser::AddUint64(std::string name, uint64_t* target, std::string help, bool required) {
  Option o{.name = name, .help = std::move(help), .value_hint = "N", .required = required};
  o.default_text = absl::StrCat(*target);
  o.assign = [target, name](absl::string_view v) {
    uint64_t parsed;
    if (!absl::SimpleAtoi(v, &parsed)) return BadValue(name, v, "a non-negative integer");
    *target = parsed;
    return absl::OkStatus();
  };
  Add(std::move(o));
}

void ArgParser::AddDouble(std::string name, double* target, std::string help, bool required) {
  Option o{.name = name, .help = std::move(help), .value_hint = "X", .required = required};
  o.default_text = absl::StrCat(*target);
  o.assign = [target, name](absl::string_view v) {
    double parsed;
    if (!absl::SimpleAtod(v, &parsed)) return BadValue(name, v, "a number");
    *target = parsed;
    return absl::OkStatus();
  };
  Add(std::move(o));
}

void ArgParser::AddBool(std::string name, bool* target, std::string help) {
  Option o{.name = name, .help = std::move(help), .is_switch = true};
  o.assign = [target, name](absl::string_view v) {
    if (v.empty() || v == "true" || v == "1") {
      *target = true;
    } else if (v == "false" || v == "0") {
      *target = false;
    } else {
      return BadValue(name, v, "true or false");
    }
    return absl::OkStatus();
  };
  Add(std::move(o));
}

void ArgParser::AddRepeated(std::string name, std::vector<std::string>* target,
                            std::string help) {
  Option o{.name = name, .help = std::move(help), .value_hint = "STR"};
  o.assign = [target](absl::string_view v) {
    target->emplace_back(v);
    return absl::OkStatus();
  };
  Add(std::move(o));
}

absl::Status ArgParser::Parse(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return Parse(args);
}

absl::Status ArgParser::Parse(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      help_requested_ = true;
      return absl::OkStatus();
    }
    if (arg.size() < 3 || arg.substr(0, 2) != "--") {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument '", arg, "' (options start with --)"));
    }
    arg.remove_prefix(2);
    absl::string_view name = arg;
    absl::string_view value;
    bool has_inline_value = false;
    if (size_t eq = arg.find('='); eq != absl::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_inline_value = true;
    }
    Option* option = Find(name);
    if (option == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown option --", name));
    }
    if (!option->is_switch && !has_inline_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      }
      value = args[++i];
    }
    option->seen = true;
    absl::Status status = option->assign(value);
    if (!status.ok()) return status;
  }
  for (const Option& option : options_) {
    if (option.required && !option.seen) {
      return absl::InvalidArgumentError(absl::StrCat("missing required option --", option.name));
    }
  }
  return absl::OkStatus();
}

std::string ArgParser::Usage() const {
  std::string out = absl::StrCat("usage: ", command_, " [options]\n\n", summary_, "\n\noptions:\n");
  for (const Option& option : options_) {
    std::string left = absl::StrCat("  --", option.name);
    if (!option.value_hint.empty()) absl::StrAppend(&left, " ", option.value_hint);
    if (left.size() < 28) left.resize(28, ' ');
    else absl::StrAppend(&left, "\n", std::string(28, ' '));
    absl::StrAppend(&out, left, option.help);
    if (option.required) absl::StrAppend(&out, " (required)");
    else if (!option.default_text.empty() && option.default_text != "0" &&
             option.default_text != "\"\"")
      absl::StrAppend(&out, " (default ", option.default_text, ")");
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, "  --help                    show this help\n");
  return out;
}

}  // namespace blockserve
