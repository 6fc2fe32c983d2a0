// examples/common/cli.h: the command-line parser the example programs share.
//
//   Cli cli("enwik8 train", "Trains a character-level AFT language model.");
//   int64_t steps = 1000;
//   cli.add("--steps", &steps, "optimizer steps");
//   cli.parse(argc, argv, first);    // --help prints every option with its default (if not empty)
//
// Options take a value (--steps 100 or --steps=100), except bools, which are flags
// (--causal) or take true/false. Unknown options and malformed values are errors that name the
// option and say what was expected.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace aft::cli {

class Cli {
 public:
  Cli(std::string program, std::string description);

  void add(const std::string& name, std::string* value, const std::string& help);
  void add(const std::string& name, int64_t* value, const std::string& help);
  void add(const std::string& name, double* value, const std::string& help);
  void add(const std::string& name, bool* value, const std::string& help);
  // Options given explicitly on the command line (to let them override a preset).
  bool given(const std::string& name) const;

  // Parses argv[first..argc). Returns false after printing --help (the caller exits 0).
  // Throws aft::Error on a bad command line.
  bool parse(int argc, char** argv, int first = 1);
  std::string help() const;

 private:
  struct Opt {
    std::string name, help, kind;
    std::function<void(const std::string&)> set;
    std::function<std::string()> show;
  };
  Opt* find(const std::string& name);
  std::string program_, description_;
  std::vector<Opt> opts_;
  std::vector<std::string> given_;
};

}  // namespace aft::cli
