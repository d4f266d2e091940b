// cuGetProcAddress of the simulated driver against the real driver's measured answers, and the
// export surface (all 637 names of libcuda 13.0).
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "fake_loader.hpp"
#include "xpu_catch.hpp"

namespace {

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> f;
  std::stringstream ss(line);
  std::string x;
  while (std::getline(ss, x, '\t')) f.push_back(x);
  return f;
}

}  // namespace

TEST_CASE("fake_gpa_matches_driver580") {
  std::ifstream in(XPU_TEST_DATA_DIR "/driver580-getprocaddress-map.tsv");
  REQUIRE(in.good());
  auto gpa = FK(cuGetProcAddress_v2);
  REQUIRE(gpa != nullptr);
  int rows = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto f = split_tabs(line);
    REQUIRE(f.size() == 6);
    const std::string& sym = f[0];
    const int version = std::stoi(f[1]);
    const auto flags = static_cast<cuuint64_t>(std::stoull(f[2]));
    const int want_rc = std::stoi(f[3].substr(3));
    const int want_status = std::stoi(f[4].substr(7));
    const std::string& want = f[5];

    void* sentinel = reinterpret_cast<void*>(0x1234);
    void* pfn = sentinel;
    auto status = static_cast<CUdriverProcAddressQueryResult>(77);
    const CUresult rc = gpa(sym.c_str(), &pfn, version, flags, &status);
    INFO(line);
    CHECK(static_cast<int>(rc) == want_rc);
    if (want == "(untouched)") {
      CHECK(pfn == sentinel);
      CHECK(static_cast<int>(status) == 77);
    } else if (want == "(null)") {
      CHECK(pfn == nullptr);
      CHECK(static_cast<int>(status) == want_status);
    } else {
      CHECK(static_cast<int>(status) == want_status);
      void* exp = dlsym(fk::cuda(), want.c_str());
      REQUIRE(exp != nullptr);
      CHECK(pfn == exp);
    }
    ++rows;
  }
  CHECK(rows == 1313);
}

TEST_CASE("fake exports every libcuda 13.0 name and unimplemented ones return 801") {
  std::ifstream in(XPU_TEST_DATA_DIR "/libcuda-13.0-stub-exports.txt");
  REQUIRE(in.good());
  int n = 0;
  std::string name;
  while (in >> name) {
    INFO(name);
    CHECK(dlsym(fk::cuda(), name.c_str()) != nullptr);
    ++n;
  }
  CHECK(n == 637);
  CHECK(FK(cuMemcpyHtoD_v2)(0, nullptr, 0) == CUDA_ERROR_NOT_SUPPORTED);
  const void* table = reinterpret_cast<const void*>(0x1);
  CUuuid id{};
  CHECK(FK(cuGetExportTable)(&table, &id) == CUDA_ERROR_NOT_SUPPORTED);
  // Test hooks are extra exports.
  CHECK(dlsym(fk::cuda(), "xpuFakeQuery") != nullptr);
  CHECK(dlsym(fk::cuda(), "xpuFakeCallCount") != nullptr);
}

TEST_CASE("the 4-argument cuGetProcAddress and cudart's recorded lookups") {
  void* p4 = nullptr;
  REQUIRE(FK(cuGetProcAddress)("cuMemAlloc", &p4, 13000, 0) == CUDA_SUCCESS);
  CHECK(p4 == dlsym(fk::cuda(), "cuMemAlloc_v2"));
  REQUIRE(FK(cuGetProcAddress)("cuGetProcAddress", &p4, 11030, 0) == CUDA_SUCCESS);
  CHECK(p4 == dlsym(fk::cuda(), "cuGetProcAddress"));
  CHECK(FK(cuGetProcAddress)("cuMemAlloc", &p4, 13000, 4) == CUDA_ERROR_INVALID_VALUE);
  CHECK(FK(cuGetProcAddress_v2)("cuMemAlloc", nullptr, 13000, 0, nullptr) ==
        CUDA_ERROR_INVALID_VALUE);

  // Every lookup libcudart 13 makes at start-up resolves (except its "" probe), but for the
  // graphics-interop entry points (GL/EGL/VDPAU): the 13.0 export list has none of them, so the
  // simulated driver answers SYMBOL_NOT_FOUND where the real one returns its interop functions.
  std::ifstream in(XPU_TEST_DATA_DIR "/cudart13-driver-lookups.txt");
  REQUIRE(in.good());
  std::string line;
  int lookups = 0;
  int interop_lookups = 0;
  while (std::getline(in, line)) {
    char sym[128] = {};
    int version = 0;
    unsigned long long flags = 0;
    if (sscanf(line.c_str(), "cuGetProcAddress_v2(%127[^,], %d, flags=%llu)", sym, &version,
               &flags) != 3) {
      continue;
    }
    ++lookups;
    void* p = nullptr;
    CUdriverProcAddressQueryResult st{};
    INFO(line);
    CHECK(FK(cuGetProcAddress_v2)(sym, &p, version, flags, &st) == CUDA_SUCCESS);
    const std::string s(sym);
    const bool interop = s.find("GL") != std::string::npos || s.find("EGL") != std::string::npos ||
                         s.find("VDPAU") != std::string::npos ||
                         s == "cuGraphicsResourceGetMappedEglFrame";
    if (interop) {
      ++interop_lookups;
      CHECK(st == CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
    } else {
      CHECK(st == CU_GET_PROC_ADDRESS_SUCCESS);
      CHECK(p != nullptr);
    }
  }
  CHECK(lookups == 439);
  CHECK(interop_lookups == 29);
  void* p = reinterpret_cast<void*>(0x1);
  CUdriverProcAddressQueryResult st{};
  CHECK(FK(cuGetProcAddress_v2)("", &p, 0, 0, &st) == CUDA_SUCCESS);
  CHECK(p == nullptr);
  CHECK(st == CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
}

TEST_CASE("xpuFakeCallCount counts calls per export name") {
  const auto before = FK(xpuFakeCallCount)("cuDriverGetVersion");
  int v = 0;
  REQUIRE(FK(cuDriverGetVersion)(&v) == CUDA_SUCCESS);
  CHECK(v == 13000);
  void* p = nullptr;
  REQUIRE(FK(cuGetProcAddress_v2)("cuDriverGetVersion", &p, 13000, 0, nullptr) == CUDA_SUCCESS);
  REQUIRE(reinterpret_cast<decltype(&cuDriverGetVersion)>(p)(&v) == CUDA_SUCCESS);
  CHECK(FK(xpuFakeCallCount)("cuDriverGetVersion") == before + 2);
  CHECK(FK(xpuFakeCallCount)("cuGetProcAddress_v2") >= 1);
  CHECK(FK(xpuFakeCallCount)("cuNoSuchThing") == 0);
  CHECK(FK(xpuFakeCallCount)(nullptr) == 0);
  // Stubs count too.
  const auto stub_before = FK(xpuFakeCallCount)("cuMemcpyDtoH_v2");
  FK(cuMemcpyDtoH_v2)(nullptr, 0, 0);
  CHECK(FK(xpuFakeCallCount)("cuMemcpyDtoH_v2") == stub_before + 1);
  FK(xpuFakeResetCallCounts)();
  CHECK(FK(xpuFakeCallCount)("cuDriverGetVersion") == 0);
}
