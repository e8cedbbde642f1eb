/* The "limit" row of bench:vs-torch: the same biased MF step as actorflow's fused kernel (forward,
 * backward, lazy row-wise Adam with per-row step counts, l2 on touched rows) as a plain C loop,
 * compiled with gcc -O3 -march=native. Reads train/test CSV (user,item,rating; 0-based ids). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct { int *u, *i; float *r; int n; } Data;
static Data load(const char *path) {
  Data d = {0}; int cap = 1 << 17; d.u = malloc(cap * 4); d.i = malloc(cap * 4); d.r = malloc(cap * 4);
  FILE *f = fopen(path, "r"); if (!f) { perror(path); exit(2); }
  char line[256]; if (!fgets(line, sizeof line, f)) exit(2);
  int u, i; float r;
  while (fscanf(f, "%d,%d,%f", &u, &i, &r) == 3) {
    if (d.n == cap) { cap *= 2; d.u = realloc(d.u, cap * 4); d.i = realloc(d.i, cap * 4); d.r = realloc(d.r, cap * 4); }
    d.u[d.n] = u; d.i[d.n] = i; d.r[d.n] = r; d.n++;
  }
  fclose(f); return d;
}
static unsigned long long rs = 42;
static double rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (rs >> 11) * (1.0 / 9007199254740992.0); }
static double gauss(void) { double a = rnd() + 1e-12, b = rnd(); return sqrt(-2 * log(a)) * cos(6.283185307179586 * b); }
typedef struct { float *w, *m, *v, *g; int *steps, *mark; int dim; } Table;
static Table table(int rows, int dim, double std) {
  Table t = { calloc(rows * dim, 4), calloc(rows * dim, 4), calloc(rows * dim, 4), calloc(rows * dim, 4), calloc(rows, 4), calloc(rows, 4), dim };
  for (int k = 0; k < rows * dim; k++) t.w[k] = std * gauss();
  return t;
}
static void adam(Table *t, int row, float lr, float l2) {
  int t_ = ++t->steps[row]; float c1 = 1 - powf(0.9f, t_), c2 = 1 - powf(0.999f, t_);
  float *w = t->w + row * t->dim, *m = t->m + row * t->dim, *v = t->v + row * t->dim, *g = t->g + row * t->dim;
  for (int k = 0; k < t->dim; k++) {
    float gr = g[k] + l2 * w[k];
    m[k] = 0.9f * m[k] + 0.1f * gr; v[k] = 0.999f * v[k] + 0.001f * gr * gr;
    w[k] -= lr * (m[k] / c1) / (sqrtf(v[k] / c2) + 1e-8f); g[k] = 0;
  }
}
int main(int argc, char **argv) {
  if (argc < 10) { fprintf(stderr, "usage: mf_ref train.csv test.csv users items dim epochs batch lr l2\n"); return 2; }
  Data tr = load(argv[1]), te = load(argv[2]);
  int U = atoi(argv[3]), I = atoi(argv[4]), d = atoi(argv[5]), epochs = atoi(argv[6]), B = atoi(argv[7]);
  float lr = atof(argv[8]), l2 = atof(argv[9]);
  Table P = table(U, d, 0.1), Q = table(I, d, 0.1), bu = table(U, 1, 0), bi = table(I, 1, 0);
  double mu = 0; for (int k = 0; k < tr.n; k++) mu += tr.r[k]; mu /= tr.n;
  int *perm = malloc((size_t)tr.n * 4), *touchedU = malloc((size_t)U * 4), *touchedI = malloc((size_t)I * 4);
  for (int k = 0; k < tr.n; k++) perm[k] = k;
  struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0); clock_t c0 = clock();
  for (int ep = 0; ep < epochs; ep++) {
    for (int k = tr.n - 1; k > 0; k--) { int j = (int)(rnd() * (k + 1)); int x = perm[k]; perm[k] = perm[j]; perm[j] = x; }
    for (int s = 0; s < tr.n; s += B) {
      int n = s + B < tr.n ? B : tr.n - s, nu = 0, ni = 0; float scale = 2.0f / n;
      for (int e = s; e < s + n; e++) {
        int u = tr.u[perm[e]], i = tr.i[perm[e]];
        float *p = P.w + u * d, *q = Q.w + i * d, *gp = P.g + u * d, *gq = Q.g + i * d, dot = 0;
        for (int k = 0; k < d; k++) dot += p[k] * q[k];
        float g = scale * ((float)mu + bu.w[u] + bi.w[i] + dot - tr.r[perm[e]]);
        bu.g[u] += g; bi.g[i] += g;
        for (int k = 0; k < d; k++) { gp[k] += g * q[k]; gq[k] += g * p[k]; }
        if (!P.mark[u]) { P.mark[u] = 1; touchedU[nu++] = u; }
        if (!Q.mark[i]) { Q.mark[i] = 1; touchedI[ni++] = i; }
      }
      for (int k = 0; k < nu; k++) { adam(&P, touchedU[k], lr, l2); adam(&bu, touchedU[k], lr, l2); P.mark[touchedU[k]] = 0; }
      for (int k = 0; k < ni; k++) { adam(&Q, touchedI[k], lr, l2); adam(&bi, touchedI[k], lr, l2); Q.mark[touchedI[k]] = 0; }
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1); double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
  double se = 0;
  for (int e = 0; e < te.n; e++) {
    int u = te.u[e], i = te.i[e]; float dot = 0;
    for (int k = 0; k < d; k++) dot += P.w[u * d + k] * Q.w[i * d + k];
    double err = mu + bu.w[u] + bi.w[i] + dot - te.r[e]; se += err * err;
  }
  printf("{\"trainSeconds\": %.4f, \"cpuSeconds\": %.4f, \"testMse\": %.6f, \"ratings\": %lld}\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, cpu, se / te.n, (long long)tr.n * epochs);
  return 0;
}
