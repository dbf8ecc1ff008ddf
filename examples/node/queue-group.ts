/**
 * Two workers in a queue group share the messages of a channel; connection events are logged.
 *
 * `node build/queue-group.js [NATS_URL]`
 */
import { connect, Message, Subscription } from 'stan-client'
import { options } from './config'

const JOBS = 20

async function main(): Promise<void> {
  await using sc = await connect(options('example-workers'))
  sc.on('connectionLost', (ev) => console.warn(`connection lost: ${ev.message}`))
  sc.on('resumed', () => console.warn('connection resumed'))

  const channel = `example.jobs.${process.pid}`
  const workers = [
    await sc.subscribe(channel, { queueGroup: 'workers' }),
    await sc.subscribe(channel, { queueGroup: 'workers' }),
  ]
  const done: Message[] = []
  const work = async (sub: Subscription, name: string): Promise<number> => {
    let mine = 0
    for await (const job of sub) {
      mine++
      done.push(job)
      if (done.length === JOBS) await Promise.all(workers.map((w) => w.close()))
    }
    console.log(`${name} handled ${mine} jobs`)
    return mine
  }
  const running = Promise.all(workers.map((w, i) => work(w, `worker ${i + 1}`)))
  for (let i = 1; i <= JOBS; i++) await sc.publish(channel, `job ${i}`)
  const counts = await running
  console.log(`all ${counts.reduce((a, b) => a + b, 0)} jobs handled once`)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
