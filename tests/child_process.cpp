#include "child_process.hpp"

#include <cstdlib>
#include <cstring>
#include <iostream>

#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace dref::test {

std::map<std::string, std::function<int()>>& child_programs() {
  static std::map<std::string, std::function<int()>> programs;
  return programs;
}

int spawn_child(const std::string& name, const std::vector<std::string>& env) {
  std::vector<std::string> vars;
  for (auto e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, "DREF_TEST_CHILD=", 16) != 0)
      vars.emplace_back(*e);
  vars.push_back("DREF_TEST_CHILD=" + name);
  for (auto& e : env)
    vars.push_back(e);
  std::vector<char*> envp;
  for (auto& v : vars)
    envp.push_back(v.data());
  envp.push_back(nullptr);
  char self[] = "/proc/self/exe";
  char* argv[] = {self, nullptr};
  auto pid = ::fork();
  if (pid == 0) {
    ::execve(self, argv, envp.data());
    ::_exit(126);
  }
  return pid;
}

bool wait_reaped(int pid, int limit_ms) {
  for (int waited = 0;; waited += 10) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return true;
    if (waited >= limit_ms)
      return false;
    ::usleep(10 * 1000);
  }
}

int run_child_if_requested() {
  auto name = std::getenv("DREF_TEST_CHILD");
  if (name == nullptr)
    return -1;
  auto& programs = child_programs();
  auto i = programs.find(name);
  if (i == programs.end()) {
    std::cerr << "no child program named " << name << std::endl;
    return 127;
  }
  return i->second();
}

} // namespace dref::test
