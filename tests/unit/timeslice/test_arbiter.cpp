#include "ts_test_support.hpp"
