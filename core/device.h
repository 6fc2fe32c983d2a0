// core/device.h: where a tensor's storage lives: the host (CPU) or CUDA device n.
//
// In the EMULATE build the CUDA device is the SIMT emulator: its memory is host memory, but a
// tensor on it is still a CUDA tensor, so forgetting a to(device) is an error there too.
#pragma once

#include <cstdint>

namespace aft {

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  constexpr Device() = default;
  constexpr Device(DeviceType t, int i = 0) : type(t), index(t == DeviceType::CPU ? 0 : i) {}
  static constexpr Device cpu() { return {DeviceType::CPU, 0}; }
  static constexpr Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }

  constexpr bool is_cpu() const { return type == DeviceType::CPU; }
  constexpr bool is_cuda() const { return type == DeviceType::CUDA; }
  constexpr bool operator==(const Device&) const = default;
};

inline constexpr Device kCPU = Device::cpu();

// Parses "cpu", "cuda", "cuda:1" (throws aft::Error otherwise).
Device parse_device(const char* s);

}  // namespace aft
