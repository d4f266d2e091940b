#include "xpu_catch.hpp"
