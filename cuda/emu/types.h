// cuda/emu/types.h: CUDA's built-in vector types for the SIMT emulator (included by
// cuda/emu/emulator.h): uint3 and dim3 (thread and block indices), float2/3/4, double2/3,
// int2/3/4, uint2/4 and their make_* functions.
//
// They live in the global namespace, as in CUDA, with CUDA's alignment: a float2 is 8-byte and
// a float4 16-byte aligned, so a kernel that reinterprets a float* as float4* needs the same
// alignment here as on the GPU (an ASan/UBSan build reports a misaligned access).
// double4 is left out: CUDA 13 deprecates it in favour of double4_16a / double4_32a.
#pragma once

// ---- indices and launch dimensions
struct uint3 {
  unsigned x, y, z;
};

// dim3: unspecified components are 1. Converts to and from uint3, as in CUDA.
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}  // NOLINT(google-explicit-constructor)
  constexpr operator uint3() const { return {x, y, z}; }
};

// ---- vectors
struct alignas(8) float2 { float x, y; };
struct float3 { float x, y, z; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) double2 { double x, y; };
struct double3 { double x, y, z; };
struct alignas(8) int2 { int x, y; };
struct int3 { int x, y, z; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };

static_assert(sizeof(float2) == 8 && alignof(float2) == 8, "float2 as in CUDA");
static_assert(sizeof(float4) == 16 && alignof(float4) == 16, "float4 as in CUDA");
static_assert(sizeof(double2) == 16 && alignof(double2) == 16, "double2 as in CUDA");
static_assert(sizeof(int4) == 16 && alignof(int4) == 16, "int4 as in CUDA");

inline constexpr float2 make_float2(float x, float y) { return {x, y}; }
inline constexpr float3 make_float3(float x, float y, float z) { return {x, y, z}; }
inline constexpr float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline constexpr double2 make_double2(double x, double y) { return {x, y}; }
inline constexpr double3 make_double3(double x, double y, double z) { return {x, y, z}; }
inline constexpr int2 make_int2(int x, int y) { return {x, y}; }
inline constexpr int3 make_int3(int x, int y, int z) { return {x, y, z}; }
inline constexpr int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline constexpr uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline constexpr uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return {x, y, z}; }
inline constexpr uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
