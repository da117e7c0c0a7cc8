// Host build of the kernels: g++ -O2 -shared -fPIC kernels/host_launch.cpp (see tests/test_kernels_host.py).
#include "host_shim.h"
#include "colour.cu"

extern "C" void host_hwc_u8_to_nchw_f32(const unsigned char* src, float* dst, long long plane, long long total,
                                        const float* m, const float* off, float sigma, unsigned long long seed) {
    for (long long i = 0; i < total; ++i) {
        blockIdx.x = i;
        hwc_u8_to_nchw_f32(src, dst, plane, total, m, off, sigma, seed);
    }
}

extern "C" void host_nchw_f32_to_hwc_u8(const float* src, unsigned char* dst, long long plane, long long total,
                                        const float* m, const float* off) {
    for (long long i = 0; i < total; ++i) {
        blockIdx.x = i;
        nchw_f32_to_hwc_u8(src, dst, plane, total, m, off);
    }
}
