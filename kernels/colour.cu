// The CUDA source of the fused colour/noise kernels (compiled by CuPy at run time, by nvcc in the
// tests, and for the host through host_shim.h so their arithmetic is checked without a GPU).
__device__ __forceinline__ unsigned long long splitmix64(unsigned long long z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// Two standard normals from one 64-bit hash (Box-Muller).
__device__ __forceinline__ float2 gaussian2(unsigned long long seed, unsigned long long i) {
    unsigned long long h = splitmix64(seed ^ splitmix64(i));
    float u1 = ((h >> 40) + 1.0f) * (1.0f / 16777217.0f);          // (0, 1]
    float u2 = ((h & 0xFFFFFFULL) + 0.5f) * (1.0f / 16777216.0f);    // (0, 1)
    float r = sqrtf(-2.0f * logf(u1));
    float s, c;
    sincospif(2.0f * u2, &s, &c);
    return make_float2(r * c, r * s);
}

extern "C" __global__
void hwc_u8_to_nchw_f32(const unsigned char* __restrict__ src, float* __restrict__ dst,
                        long long plane, long long total, const float* __restrict__ m,
                        const float* __restrict__ off, float sigma, unsigned long long seed) {
    long long i = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (i >= total) return;
    const float k = 1.0f / 255.0f;
    float r = src[3 * i] * k, g = src[3 * i + 1] * k, b = src[3 * i + 2] * k;
    float c0 = m[0] * r + m[1] * g + m[2] * b + off[0];
    float c1 = m[3] * r + m[4] * g + m[5] * b + off[1];
    float c2 = m[6] * r + m[7] * g + m[8] * b + off[2];
    if (sigma > 0.0f) {
        float2 n01 = gaussian2(seed, 2 * (unsigned long long)i);
        float2 n2 = gaussian2(seed, 2 * (unsigned long long)i + 1);
        c0 += sigma * n01.x; c1 += sigma * n01.y; c2 += sigma * n2.x;
    }
    long long img = i / plane, p = i - img * plane;
    float* out = dst + img * 3 * plane + p;
    out[0] = c0; out[plane] = c1; out[2 * plane] = c2;
}

extern "C" __global__
void nchw_f32_to_hwc_u8(const float* __restrict__ src, unsigned char* __restrict__ dst,
                        long long plane, long long total, const float* __restrict__ m,
                        const float* __restrict__ off) {
    long long i = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (i >= total) return;
    long long img = i / plane, p = i - img * plane;
    const float* in = src + img * 3 * plane + p;
    float a = in[0] - off[0], b = in[plane] - off[1], c = in[2 * plane] - off[2];
    float rgb[3] = {m[0] * a + m[1] * b + m[2] * c, m[3] * a + m[4] * b + m[5] * c,
                    m[6] * a + m[7] * b + m[8] * c};
    for (int j = 0; j < 3; ++j) {
        float v = rintf(rgb[j] * 255.0f);  // round half to even, as torch.round
        dst[3 * i + j] = (unsigned char)fminf(fmaxf(v, 0.0f), 255.0f);
    }
}
