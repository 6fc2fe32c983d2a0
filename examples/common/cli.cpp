// examples/common/cli.cpp: the shared command-line parser (see cli.h).
#include "cli.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"

namespace aft::cli {

Cli::Cli(std::string program, std::string description)
    : program_(std::move(program)), description_(std::move(description)) {}

void Cli::add(const std::string& name, std::string* v, const std::string& help) {
  opts_.push_back({name, help, "TEXT", [v](const std::string& s) { *v = s; }, [v] { return *v; }});
}

void Cli::add(const std::string& name, int64_t* v, const std::string& help) {
  opts_.push_back({name, help, "N",
                   [v, name](const std::string& s) {
                     char* end = nullptr;
                     errno = 0;
                     long long x = std::strtoll(s.c_str(), &end, 10);
                     AFT_CHECK(!s.empty() && end && *end == 0, "{}: expected an integer, got '{}'", name, s);
                     // strtoll clamps an out-of-range value to the extreme and sets ERANGE.
                     AFT_CHECK(errno != ERANGE, "{}: {} is out of range (at most {})", name, s, INT64_MAX);
                     *v = x;
                   },
                   [v] { return std::to_string(*v); }});
}

void Cli::add(const std::string& name, double* v, const std::string& help) {
  opts_.push_back({name, help, "X",
                   [v, name](const std::string& s) {
                     char* end = nullptr;
                     double x = std::strtod(s.c_str(), &end);
                     AFT_CHECK(!s.empty() && end && *end == 0, "{}: expected a number, got '{}'", name, s);
                     AFT_CHECK(std::isfinite(x), "{}: expected a finite number, got '{}'", name, s);
                     *v = x;
                   },
                   [v] { return fmt::format("{:g}", *v); }});
}

void Cli::add(const std::string& name, bool* v, const std::string& help) {
  opts_.push_back({name, help, "",
                   [v, name](const std::string& s) {
                     if (s == "" || s == "true" || s == "1") *v = true;
                     else if (s == "false" || s == "0") *v = false;
                     else AFT_ERROR("{}: expected true or false, got '{}'", name, s);
                   },
                   [v] { return std::string(*v ? "true" : "false"); }});
}

bool Cli::given(const std::string& name) const {
  for (const auto& g : given_)
    if (g == name) return true;
  return false;
}

Cli::Opt* Cli::find(const std::string& name) {
  for (auto& o : opts_)
    if (o.name == name) return &o;
  return nullptr;
}

std::string Cli::help() const {
  std::string s = fmt::format("usage: {} [options]\n{}\n\noptions:\n", program_, description_);
  for (const auto& o : opts_) {
    std::string left = o.name + (o.kind.empty() ? "" : " " + o.kind), value = o.show();
    // An empty default (a path the program fills in or requires) is left to the help text.
    s += fmt::format("  {:<24} {}{}\n", left, o.help, value.empty() ? "" : " (default: " + value + ")");
  }
  s += fmt::format("  {:<24} {}\n", "--help", "print this help");
  return s;
}

bool Cli::parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(help().c_str(), stdout);
      return false;
    }
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    Opt* o = find(arg);
    AFT_CHECK(o != nullptr, "{}: unknown option '{}' (try --help)", program_, arg);
    if (!has_value && !o->kind.empty()) {
      AFT_CHECK(i + 1 < argc, "{}: option {} needs a value ({})", program_, arg, o->kind);
      value = argv[++i];
    }
    o->set(value);
    given_.push_back(arg);
  }
  return true;
}

}  // namespace aft::cli
