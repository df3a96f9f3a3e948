import * as MemoryBroker from "../../src/broker/MemoryBroker.ts"
import { suite } from "./BrokerSuite.ts"

suite("MemoryBroker", MemoryBroker.layer(), { wait: "5 seconds" })
