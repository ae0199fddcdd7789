// Integration tests start real servers and kernels: allow them time (a timeout, never a sleep).
jest.setTimeout(180_000);
