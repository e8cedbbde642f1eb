import * as tf from '@tensorflow/tfjs';
import t from 'tap';
import { detectGpus, hostFacts, matmulRate, parseNvidiaSmi, sparseKernelRate } from '../mod.ts';

t.test('nvidia-smi output', async (t) => {
  t.same(parseNvidiaSmi('NVIDIA A100-SXM4-40GB, 40960 MiB\nTesla T4, 15360 MiB\n\n'), [
    { name: 'NVIDIA A100-SXM4-40GB', memoryMiB: 40960 },
    { name: 'Tesla T4', memoryMiB: 15360 },
  ]);
  t.same(parseNvidiaSmi('Odd, Name, [N/A]\nno comma here'), [{ name: 'Odd, Name', memoryMiB: 0 }]);
  t.same(parseNvidiaSmi(''), []);
});

t.test('no nvidia-smi: no GPUs', async (t) => {
  t.same(await detectGpus('/nonexistent/nvidia-smi'), []);
});

t.test('the host and the kernels measure something positive', async (t) => {
  const h = hostFacts();
  t.ok(h.cores >= 1 && h.memoryBytes > 0 && h.freeMemoryBytes > 0 && h.cpuModel.length > 0);
  t.ok(sparseKernelRate(20) > 0);
  await tf.setBackend('cpu');
  t.ok(matmulRate(tf, 20, 32) > 0);
});
