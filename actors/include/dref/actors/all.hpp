#pragma once

// Everything a dref program needs.
#include "dref/actors/buffer_writer.hpp"
#include "dref/actors/config.hpp"
#include "dref/actors/error.hpp"
#include "dref/actors/registry.hpp"
#include "dref/actors/runtime.hpp"
#include "dref/actors/task.hpp"
#include "dref/actors/then.hpp"
#include "dref/refs/error.hpp"
#include "dref/refs/ref.hpp"
