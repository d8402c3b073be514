// RMSNorm for bf16 rows: one block per row, 16-byte loads (8 x bf16), fp32 sum of squares
// reduced with warp shuffles, one rounding to bf16 on the way out. Destination-passing style:
// run(hidden_states, weight, output). Needs hidden % 8 == 0 and 16-byte aligned rows.
#include <torch/extension.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_bf16.h>

constexpr float EPS = 1e-05;
constexpr int kVec = 8;  // bf16 values per 16-byte load

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ float block_sum(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  v = threadIdx.x < warps ? partial[threadIdx.x] : 0.f;
  if (warp == 0) v = warp_sum(v);
  if (threadIdx.x == 0) partial[0] = v;
  __syncthreads();
  return partial[0];
}

__global__ void rmsnorm_kernel(const uint4* __restrict__ x, const uint4* __restrict__ weight,
                               uint4* __restrict__ out, int vecs_per_row, int hidden, float eps) {
  const int64_t base = static_cast<int64_t>(blockIdx.x) * vecs_per_row;
  float sum_sq = 0.f;
  for (int i = threadIdx.x; i < vecs_per_row; i += blockDim.x) {
    uint4 packed = x[base + i];
    const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&packed);
#pragma unroll
    for (int j = 0; j < kVec / 2; ++j) {
      float2 f = __bfloat1622float2(pairs[j]);
      sum_sq += f.x * f.x + f.y * f.y;
    }
  }
  const float inv_rms = rsqrtf(block_sum(sum_sq) / hidden + eps);
  for (int i = threadIdx.x; i < vecs_per_row; i += blockDim.x) {
    uint4 packed = x[base + i], w_packed = weight[i], result;
    const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&packed);
    const __nv_bfloat162* w_pairs = reinterpret_cast<const __nv_bfloat162*>(&w_packed);
    __nv_bfloat162* out_pairs = reinterpret_cast<__nv_bfloat162*>(&result);
#pragma unroll
    for (int j = 0; j < kVec / 2; ++j) {
      float2 f = __bfloat1622float2(pairs[j]), w = __bfloat1622float2(w_pairs[j]);
      out_pairs[j] = __floats2bfloat162_rn(f.x * inv_rms * w.x, f.y * inv_rms * w.y);
    }
    out[base + i] = result;
  }
}

static void check_bf16(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.is_cuda(), name, " must be a CUDA tensor");
  TORCH_CHECK(t.scalar_type() == at::kBFloat16, name, " must be bfloat16");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
  TORCH_CHECK(reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0, name, " must be 16-byte aligned");
}

void run(torch::Tensor hidden_states, torch::Tensor weight, torch::Tensor output) {
  check_bf16(hidden_states, "hidden_states");
  check_bf16(weight, "weight");
  check_bf16(output, "output");
  const int64_t rows = hidden_states.size(0);
  const int hidden = static_cast<int>(hidden_states.size(1));
  TORCH_CHECK(hidden % kVec == 0, "hidden size must be a multiple of ", kVec);
  if (rows == 0) return;
  const int vecs = hidden / kVec;
  const int threads = std::min(1024, (vecs + 31) / 32 * 32);
  const at::cuda::OptionalCUDAGuard guard(hidden_states.device());
  rmsnorm_kernel<<<rows, threads, 0, at::cuda::getCurrentCUDAStream()>>>(
      reinterpret_cast<const uint4*>(hidden_states.data_ptr()),
      reinterpret_cast<const uint4*>(weight.data_ptr()), reinterpret_cast<uint4*>(output.data_ptr()),
      vecs, hidden, EPS);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("run", &run, "RMSNorm (bf16, DPS)"); }
