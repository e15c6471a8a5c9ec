{
  "targets": [
    {
      "target_name": "flip_kernels",
      "sources": ["src/addon.cc", "src/gemm.cc", "src/layer_norm.cc", "src/quick_gelu.cc", "src/attention.cc", "src/parallel.cc", "src/adamw.cc", "src/sublayers.cc", "src/stacks.cc", "src/clip_head.cc", "src/embeddings.cc"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-exceptions", "-fno-math-errno", "-fassociative-math", "-fno-signed-zeros", "-fno-trapping-math", "-Wno-psabi", "-fno-tree-loop-distribute-patterns", "-pthread"],
      "ldflags": ["-pthread"],
      "libraries": ["-lopenblas"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
