// One include for tests, whichever Catch2 is installed: 3.x (split headers, Catch2WithMain)
// or 2.13 (single header; tests/support/catch2_main.cpp provides main).
#pragma once
#if defined(XPU_CATCH2_V3)
#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#else
#include <catch2/catch.hpp>
#endif
