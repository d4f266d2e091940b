// real_driver.hpp: the CUDA driver's own entry points, found without asking the dynamic linker.
//
// Why: driver_microbench compares, inside one process and in interleaved batches, the function a
// program normally calls (the shim's hook when the shim is preloaded) with the driver's real one.
// Comparing across processes is not precise enough on the H100 machine: per-process timings of the
// same binary spread by 10-30 % (alloc/free, cuMemGetInfo are bimodal), far above the 1 us target.
// dlsym and cuGetProcAddress cannot give the real address (the shim hooks both), so it is computed
// here: load base of libcuda.so.1 (dl_iterate_phdr) + st_value of the symbol in the file's .dynsym.
// Linux, ELF64 only; returns nullptr when anything is off, and the caller then skips the
// comparison.
#pragma once

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace xpu::bench {

struct LoadedObject {
  std::string path;
  ElfW(Addr) base = 0;
};

// The first loaded object whose path contains `needle` (e.g. "libcuda.so").
inline LoadedObject find_loaded(const char* needle) {
  struct Search {
    const char* needle;
    LoadedObject found;
  } search{needle, {}};
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) -> int {
        auto* s = static_cast<Search*>(data);
        if (info->dlpi_name == nullptr || std::strstr(info->dlpi_name, s->needle) == nullptr)
          return 0;
        s->found = {info->dlpi_name, info->dlpi_addr};
        return 1;
      },
      &search);
  return search.found;
}

// Address of the defined function `name` in the loaded object at `obj`, read from its file on disk.
inline void* real_symbol(const LoadedObject& obj, const char* name) {
  if (obj.path.empty()) return nullptr;
  const int fd = open(obj.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  struct stat st {};
  void* map =
      (fstat(fd, &st) == 0 && st.st_size > 0)
          ? mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0)
          : MAP_FAILED;
  close(fd);
  if (map == MAP_FAILED) return nullptr;
  const auto* bytes = static_cast<const unsigned char*>(map);
  const auto size = static_cast<std::size_t>(st.st_size);
  void* result = nullptr;
  const auto* eh = static_cast<const Elf64_Ehdr*>(map);
  const bool elf64 = size >= sizeof(Elf64_Ehdr) && std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 &&
                     eh->e_ident[EI_CLASS] == ELFCLASS64 &&
                     eh->e_shoff + std::size_t{eh->e_shnum} * sizeof(Elf64_Shdr) <= size;
  if (elf64) {
    const auto* sh = reinterpret_cast<const Elf64_Shdr*>(bytes + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum && result == nullptr; ++i) {
      if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh->e_shnum) continue;
      const Elf64_Shdr& strtab = sh[sh[i].sh_link];
      if (sh[i].sh_offset + sh[i].sh_size > size || strtab.sh_offset + strtab.sh_size > size) break;
      const auto* syms = reinterpret_cast<const Elf64_Sym*>(bytes + sh[i].sh_offset);
      const auto* names = reinterpret_cast<const char*>(bytes + strtab.sh_offset);
      for (std::size_t k = 0; k < sh[i].sh_size / sizeof(Elf64_Sym); ++k) {
        if (syms[k].st_shndx == SHN_UNDEF || ELF64_ST_TYPE(syms[k].st_info) != STT_FUNC) continue;
        if (syms[k].st_name >= strtab.sh_size || std::strcmp(names + syms[k].st_name, name) != 0)
          continue;
        result = reinterpret_cast<void*>(obj.base + syms[k].st_value);
        break;
      }
    }
  }
  munmap(map, size);
  return result;
}

}  // namespace xpu::bench
