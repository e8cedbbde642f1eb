export class TensorBoardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TensorBoardError';
  }
}
