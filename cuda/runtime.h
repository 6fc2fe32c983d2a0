// cuda/runtime.h: the host-side view of the CUDA device: is there one, its memory, copies.
//
// This header is plain C++ and compiled in every build. With AFT_CUDA=OFF the functions report
// that CUDA was not built; in a real CUDA build on a machine without a usable GPU they report
// why (no device, no driver) instead of crashing; in the EMULATE build the device is the SIMT
// emulator, whose memory is host memory kept apart from CPU tensors.
#pragma once

#include <cstddef>
#include <string>

#include "core/caching_allocator.h"

namespace aft::cuda {

using DeviceMemoryStats = AllocatorStats;

// How this library was built: "off", "cuda" or "emulate".
const char* build_mode();
bool is_built();      // real CUDA or the emulator
bool is_emulated();   // the SIMT emulator

// Number of usable devices; 0 (never an exception) when there are none or CUDA is not built.
int device_count();
bool is_available();
// Why device_count() is 0, in words; empty when a device is available.
std::string unavailable_reason();
// Name of device i, e.g. "NVIDIA H100 80GB HBM3" or "SIMT emulator".
std::string device_name(int index = 0);

// Throws aft::Error, naming `op`, unless device `index` exists.
void require_device(int index, const char* op);

// Device memory (through the caching allocator, core/caching_allocator.h). allocate(0)
// returns nullptr; out of memory throws aft::Error saying how much was asked and is in use.
void* allocate(size_t bytes, int device);
void deallocate(void* p, size_t bytes, int device);

// Bytes in use by tensors, their high-water mark, bytes reserved from the driver.
DeviceMemoryStats memory_stats(int device = 0);
void reset_peak_memory(int device = 0);
// Returns cached free blocks to the driver (other processes can then use the memory).
void empty_cache();

// Copies of `bytes` bytes; the device side is the current device's stream. h2d and d2h
// synchronise before returning, so the host buffer may be reused at once.
void copy_h2d(void* dst, const void* src, size_t bytes);
void copy_d2h(void* dst, const void* src, size_t bytes);
void copy_d2d(void* dst, const void* src, size_t bytes);

// Pinned (page-locked) host memory, which the GPU's copy engines read directly, so a copy from
// it can be queued without a staging copy (cudaHostAlloc / cudaFreeHost). In the emulator and in
// AFT_CUDA=OFF builds it is ordinary aligned host memory. host_alloc_pinned(0) returns nullptr;
// failure throws aft::Error. host_free_pinned first waits for queued work, which may still be
// reading the block.
void* host_alloc_pinned(size_t bytes);
void host_free_pinned(void* p);

// Host to device without waiting: queued on the current device's stream and ordered before
// every kernel launched after it. `src` must be pinned memory and must not be written until the
// copy is done (synchronize(), or any copy to the host, which waits for the stream). In the
// emulator and without CUDA it is copy_h2d.
void copy_h2d_async(void* dst, const void* src, size_t bytes);

// Waits until all queued work on the device has finished.
void synchronize();

}  // namespace aft::cuda
