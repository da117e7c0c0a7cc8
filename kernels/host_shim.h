// Compiles the CUDA kernels of colour.cu as plain C++ for the host, so their arithmetic can be
// checked against the torch references on a machine without a GPU: a loop over the thread index
// stands in for the launch (one block of one thread per call, blockIdx carrying the index).
#pragma once
#include <math.h>

#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__

struct float2 { float x, y; };
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline void sincospif(float x, float* s, float* c) {
    *s = sinf(3.14159265358979323846f * x);
    *c = cosf(3.14159265358979323846f * x);
}


struct dim3_ { long long x; };
static dim3_ blockDim{1}, blockIdx{0}, threadIdx{0};
